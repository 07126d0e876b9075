//! The whole configuration: the core of `config` with the tables it leaves
//! to others, `[outbound]` and `[teams]` (with the templates) and
//! `[detector]` (with the detector built from it).
//!
//! `config` imports nothing of `outbound` or `detect`: it names their
//! tables in `rules.toml` but hands them, with their spans, to the check
//! [`load`] gives `config::load_with`. `outbound::settings` and
//! `detect::table` read them into their own types, so every error still
//! points at its `file:line:column`, and a check reports all of them at
//! once, or nothing is loaded.
//!
//! Why here: the outbox and the queueing code read both the core and
//! `[outbound]` of one snapshot, so the composite sits in `outbound`, above
//! `config` and `detect`. The modules `outbound` itself uses (threading,
//! routing, the loop guard) take the core [`config::Config`] only; the loop
//! guard's two `[outbound]` values are copied into it
//! ([`config::LoopGuard`]).
//!
//! The composite is called [`Config`] so the stages that read it name it as
//! before; it derefs to the core, so a stage that reads only core tables
//! takes `&config::Config` and is passed `&Config` unchanged.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::settings::{RawOutbound, RawTeams, Settings};
use crate::config::{self, ConfigError};
use crate::detect::{Detector, DetectorConfig};

/// The validated configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every table `config` reads, and the mailbox files.
    base: config::Config,
    /// `[outbound]`, `[teams]` and the templates.
    pub outbound: Settings,
    /// `[detector]`: the off-platform bypass detector's settings.
    pub detector: DetectorConfig,
    /// The detector built from [`Config::detector`], shared by every scan.
    pub detector_engine: Arc<Detector>,
    /// `[[automation]]` rules: rules.toml's, then `automation/*.toml`'s.
    pub automation: Arc<Vec<crate::automation::Rule>>,
}

impl Config {
    /// The composite of checked parts; the loop guard's values are taken
    /// from `outbound`, so the two never disagree.
    pub fn new(
        mut base: config::Config,
        outbound: Settings,
        detector: DetectorConfig,
        detector_engine: Arc<Detector>,
    ) -> Config {
        base.loop_guard = config::LoopGuard {
            x_loop: outbound.x_loop.clone(),
            auto_replies_per_hour: outbound.auto_replies_per_hour,
        };
        Config {
            base,
            outbound,
            detector,
            detector_engine,
            automation: Arc::new(Vec::new()),
        }
    }

    /// The core alone.
    pub fn core(&self) -> &config::Config {
        &self.base
    }
}

impl Deref for Config {
    type Target = config::Config;

    fn deref(&self) -> &config::Config {
        &self.base
    }
}

impl DerefMut for Config {
    fn deref_mut(&mut self) -> &mut config::Config {
        &mut self.base
    }
}

/// The tables of `rules.toml` that `config` leaves to others, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawTables {
    /// `[teams]`.
    teams: RawTeams,
    /// `[outbound]`.
    outbound: RawOutbound,
    /// `[detector]`.
    detector: DetectorConfig,
    /// `[[automation]]`.
    automation: Vec<crate::automation::RawRule>,
}

/// Load and validate the whole configuration in `dir`: `rules.toml`, the
/// templates and `mailboxes/*.toml`.
///
/// # Errors
///
/// Every problem found in every file, each at its `file:line:column`
/// (see `config::load_with`).
pub fn load(dir: &Path) -> Result<Config, ConfigError> {
    let (base, (outbound, detector, detector_engine, automation)) =
        config::load_with(dir, |raw: RawTables, cx, out| {
            let outbound = super::settings::check(
                raw.outbound,
                raw.teams,
                cx.agents,
                cx.hostname,
                cx.dir,
                &|span, message| cx.src.at(span, message),
                out,
            );
            let engine = crate::detect::table::check(&raw.detector, cx.src, out)?;
            let automation = automation_rules(raw.automation, cx, &outbound, out);
            Some((outbound, raw.detector, engine, automation))
        })?;
    let mut config = Config::new(base, outbound, detector, detector_engine);
    config.automation = Arc::new(automation);
    Ok(config)
}

/// `[[automation]]` of rules.toml, then of `automation/*.toml` in name
/// order, checked against the agents, teams, templates and calendars.
fn automation_rules(
    in_rules: Vec<crate::automation::RawRule>,
    cx: &config::Context<'_>,
    outbound: &Settings,
    out: &mut Vec<config::Diagnostic>,
) -> Vec<crate::automation::Rule> {
    let files: Vec<(config::diag::Source, crate::automation::rules::RawFile)> =
        config::read_toml_files(cx.dir, "automation", out);
    let (sources, lists): (Vec<_>, Vec<_>) =
        files.into_iter().map(|(s, f)| (s, f.automation)).unzip();
    let all = std::iter::once((cx.src, in_rules))
        .chain(sources.iter().zip(lists))
        .collect();
    let templates = outbound.templates.clone();
    let known = crate::automation::rules::Known {
        agents: cx.agents.keys().map(String::as_str).collect(),
        teams: &outbound.teams,
        template: &|name| templates.has_template(name),
        calendars: cx.calendars,
    };
    crate::automation::check(all, &known, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    /// A config directory with `rules.toml` holding `rules`.
    fn dir_with(rules: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        dir
    }

    /// `load`'s diagnostics, with the directory cut from each path.
    fn errors(dir: &tempfile::TempDir) -> Vec<String> {
        let prefix = format!("{}/", dir.path().display());
        load(dir.path())
            .unwrap_err()
            .diagnostics
            .iter()
            .map(|d| d.to_string().replace(&prefix, ""))
            .collect()
    }

    #[test]
    fn the_loop_guard_carries_the_outbound_values() {
        let dir = dir_with(
            "[server]\nhostname = \"desk.test\"\n[domains]\nserved = [\"desk.test\"]\n\
             [addresses]\nsupport = [\"s@desk.test\"]\nsales = [\"s@desk.test\"]\n\
             info = [\"s@desk.test\"]\n\
             [outbound]\nx_loop = \"loop@desk.test\"\nauto_replies_per_hour = 2\n",
        );
        let cfg = load(dir.path()).unwrap();
        assert_eq!(cfg.loop_guard.x_loop, "loop@desk.test");
        assert_eq!(cfg.outbound.x_loop, "loop@desk.test");
        assert_eq!(cfg.loop_guard.auto_replies_per_hour, 2);
        // The core alone does not read [outbound]: its defaults are the
        // table's own, for the same host.
        let core = config::load(dir.path()).unwrap();
        assert_eq!(core.loop_guard, config::LoopGuard::defaults("desk.test"));
        let unset = dir_with("[server]\nhostname = \"desk.test\"\n");
        let whole = load(unset.path()).unwrap();
        assert_eq!(whole.loop_guard, config::LoopGuard::defaults("desk.test"));
    }

    #[test]
    fn the_core_alone_ignores_the_tables_it_leaves_to_others() {
        let dir = dir_with(
            "[outbound]\nmax_attempts = 0\n[[detector.patterns]]\nname = \"odd\"\n\
             category = \"fax\"\nregex = \"x\"\n",
        );
        assert!(config::load(dir.path()).is_ok());
        let errs = errors(&dir);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:2:16: max_attempts must be greater than 0"),
            "{errs:?}"
        );
        assert!(errs[1].starts_with("rules.toml:5:12: "), "{errs:?}");
    }

    #[test]
    fn a_shape_error_in_an_outbound_table_holds_back_the_core_checks() {
        // As when rules.toml was one document: the meaning of a file is
        // checked only once its whole shape is right.
        let dir = dir_with("[limits]\nmax_errors = 0\n[outbound]\nhots = \"x\"\n");
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("rules.toml:4:1: unknown field `hots`"),
            "{errs:?}"
        );
    }

    #[test]
    fn an_unknown_table_still_lists_every_table() {
        let dir = dir_with("[outbund]\n");
        let errs = errors(&dir);
        assert_eq!(
            errs,
            [
                "rules.toml:1:2: unknown field `outbund`, expected one of `server`, \
                 `domains`, `addresses`, `senders`, `tickets`, `limits`, `threading`, \
                 `agents`, `teams`, `outbound`, `monitoring`, `detector`, `automation`, `sla`, `satisfaction`, `http`, `webhook`, `webhooks`, `store`"
            ]
        );
    }

    #[test]
    fn a_bad_detector_pattern_points_at_its_own_value() {
        let dir = dir_with(
            "[limits]\nmax_errors = 3\n\n[detector]\nmin_score = 1\n\n[[detector.patterns]]\n\
             name = \"broken\"\ncategory = \"payment\"\nregex = \"(unclosed\"\n",
        );
        let errs = errors(&dir);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("rules.toml:10:9: "), "{errs:?}");
        assert!(errs[0].contains("broken"), "{errs:?}");
        let dir =
            dir_with("[[detector.patterns]]\nname = \"odd\"\ncategory = \"fax\"\nregex = \"x\"\n");
        let errs = errors(&dir);
        assert!(errs[0].starts_with("rules.toml:3:12: "), "{errs:?}");
    }

    #[test]
    fn shipped_rules_toml_states_exactly_the_builtin_detector() {
        let shipped = load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let dir = dir_with("");
        let builtin = load(dir.path()).unwrap();
        assert_eq!(shipped.detector, builtin.detector);
        assert_eq!(builtin.detector, DetectorConfig::default());
        assert_eq!(
            shipped.detector_engine.version(),
            builtin.detector_engine.version()
        );
    }
}
