//! Templates: every mail postdesk writes, rendered with minijinja.
//!
//! One file per mail in `templates/` beside `rules.toml`: `NAME.txt` with a
//! `{% block subject %}` and a `{% block body %}`. A file that is absent
//! falls back to the built-in copy (the shipped `templates/` compiled in),
//! so an admin edits only the mails they want to change. Canned responses
//! live in `templates/canned/NAME.txt` and are a body only.
//!
//! Loading compiles every template and renders it against sample data with
//! strict undefined variables, so a typo in a variable name or a syntax
//! error is a `file:line` diagnostic at `postdesk check` (and at start-up,
//! which refuses a broken configuration), never a broken mail at run time.
//! Should a render still fail at run time (a value of an unexpected type),
//! the built-in copy is rendered instead and the error is logged.
//!
//! Header values (the subject) are made single-line here: control
//! characters, CR and LF become spaces, so a template or a customer's
//! subject can never inject a header.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::config::Diagnostic;

/// What each satisfaction score says, best first, as the survey mail
/// lists them (`ratings` of template `satisfaction`).
pub const RATING_LABELS: [(u8, &str); 5] = [
    (5, "Excellent"),
    (4, "Good"),
    (3, "Okay"),
    (2, "Poor"),
    (1, "Very poor"),
];

/// The mail templates, by name (file `NAME.txt`).
pub const NAMES: [&str; 13] = [
    "acknowledgement",
    "notification",
    "agent_reply",
    "unknown_command",
    "bounce_notice",
    "alert",
    "warning",
    "suspension",
    "digest",
    "sla",
    "auto_closed",
    "satisfaction",
    "automation",
];

/// The shipped templates, compiled in as defaults.
const BUILTIN: [(&str, &str); 13] = [
    (
        "acknowledgement",
        include_str!("../../templates/acknowledgement.txt"),
    ),
    (
        "notification",
        include_str!("../../templates/notification.txt"),
    ),
    (
        "agent_reply",
        include_str!("../../templates/agent_reply.txt"),
    ),
    (
        "unknown_command",
        include_str!("../../templates/unknown_command.txt"),
    ),
    (
        "bounce_notice",
        include_str!("../../templates/bounce_notice.txt"),
    ),
    ("alert", include_str!("../../templates/alert.txt")),
    ("warning", include_str!("../../templates/warning.txt")),
    ("suspension", include_str!("../../templates/suspension.txt")),
    ("digest", include_str!("../../templates/digest.txt")),
    ("sla", include_str!("../../templates/sla.txt")),
    (
        "auto_closed",
        include_str!("../../templates/auto_closed.txt"),
    ),
    (
        "satisfaction",
        include_str!("../../templates/satisfaction.txt"),
    ),
    ("automation", include_str!("../../templates/automation.txt")),
];

/// The shipped canned responses.
const BUILTIN_CANNED: [(&str, &str); 1] =
    [("thanks", include_str!("../../templates/canned/thanks.txt"))];

/// Variables a template may use, as a map; see [`sample`] for the full set.
pub type Vars = BTreeMap<&'static str, Value>;

/// A rendered mail: single-line subject, body ending in one newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject, safe for a header.
    pub subject: String,
    /// The text body.
    pub body: String,
}

/// A template failed to render.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct Error {
    /// The template's name.
    pub name: String,
    /// minijinja's message, with the line.
    pub message: String,
}

/// The compiled templates.
pub struct Templates {
    /// Every template, under `NAME.txt` and `canned/NAME.txt`.
    env: Environment<'static>,
    /// The built-in copies, for the run-time fallback.
    builtin: Environment<'static>,
    /// Where each mail template came from (a file, or `None`: built in).
    sources: BTreeMap<String, Option<PathBuf>>,
    /// The admin's own mail templates (`templates/NAME.txt` of no
    /// built-in name), sorted.
    custom: Vec<String>,
    /// Canned response names.
    canned: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("sources", &self.sources)
            .field("custom", &self.custom)
            .field("canned", &self.canned)
            .finish()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Block tags on lines of their own leave no blank lines behind.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

impl Templates {
    /// The built-in templates only.
    pub fn builtin() -> Templates {
        let mut out = Vec::new();
        let t = Templates::load(Path::new("/nonexistent/postdesk/templates"), &mut out);
        debug_assert!(out.is_empty(), "built-in templates render: {out:?}");
        t
    }

    /// Load `dir/NAME.txt` for every name in [`NAMES`] (the built-in copy
    /// where the file is absent) and `dir/canned/*.txt`, compile them and
    /// render each against [`sample`] data. Problems go to `out`, each with
    /// the template's file and line.
    pub fn load(dir: &Path, out: &mut Vec<Diagnostic>) -> Templates {
        let mut env = environment();
        let mut builtin = environment();
        let mut sources = BTreeMap::new();
        let diag = |file: &Path, line: usize, message: String| Diagnostic {
            file: file.to_path_buf(),
            line: line.max(1),
            column: 1,
            message: message.replace(['\r', '\n'], " "),
        };

        for (name, text) in BUILTIN {
            // The shipped copies are tested to compile (see the tests).
            let _ = builtin.add_template_owned(format!("{name}.txt"), text.to_owned());
            let path = dir.join(format!("{name}.txt"));
            let (source, from) = match std::fs::read_to_string(&path) {
                Ok(s) => (s, Some(path.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (text.to_owned(), None),
                Err(e) => {
                    out.push(diag(&path, 1, format!("cannot read template: {e}")));
                    (text.to_owned(), None)
                }
            };
            let shown = from.clone().unwrap_or_else(|| path.clone());
            if let Err(e) = env.add_template_owned(format!("{name}.txt"), source) {
                out.push(diag(&shown, e.line().unwrap_or(1), describe(&e)));
                let _ = env.add_template_owned(format!("{name}.txt"), text.to_owned());
                sources.insert(name.to_owned(), None);
                continue;
            }
            sources.insert(name.to_owned(), from);
        }

        // Any other `NAME.txt` is an admin's own mail (an automation
        // rule's `reply_template`), checked like the others.
        let mut custom: BTreeMap<String, PathBuf> = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt") && p.is_file())
                .collect();
            files.sort();
            for path in files {
                let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                    continue;
                };
                if NAMES.contains(&stem.as_str()) || !is_canned_name(&stem) {
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(source) => {
                        if let Err(e) = env.add_template_owned(format!("{stem}.txt"), source) {
                            out.push(diag(&path, e.line().unwrap_or(1), describe(&e)));
                            continue;
                        }
                        custom.insert(stem, path);
                    }
                    Err(e) => out.push(diag(&path, 1, format!("cannot read template: {e}"))),
                }
            }
        }

        let mut canned: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
        for (name, text) in BUILTIN_CANNED {
            let _ = builtin.add_template_owned(format!("canned/{name}.txt"), text.to_owned());
            let _ = env.add_template_owned(format!("canned/{name}.txt"), text.to_owned());
            canned.insert(name.to_owned(), None);
        }
        let canned_dir = dir.join("canned");
        if let Ok(entries) = std::fs::read_dir(&canned_dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt") && p.is_file())
                .collect();
            files.sort();
            for path in files {
                let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                    continue;
                };
                if !is_canned_name(&stem) {
                    out.push(diag(
                        &path,
                        1,
                        format!(
                            "canned response name `{stem}` must be lower-case letters, digits, \
                             `-` or `_`"
                        ),
                    ));
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(source) => {
                        if let Err(e) = env.add_template_owned(format!("canned/{stem}.txt"), source)
                        {
                            out.push(diag(&path, e.line().unwrap_or(1), describe(&e)));
                            continue;
                        }
                        canned.insert(stem, Some(path));
                    }
                    Err(e) => out.push(diag(&path, 1, format!("cannot read template: {e}"))),
                }
            }
        }

        let templates = Templates {
            env,
            builtin,
            sources,
            custom: custom.keys().cloned().collect(),
            canned: canned.keys().cloned().collect(),
        };

        // Render everything once against sample data: an undefined variable
        // or a failing filter is reported now, with its line.
        let vars = sample();
        for name in NAMES {
            let file = templates.file(name, dir);
            if let Err(e) = templates.try_render(&templates.env, name, &vars) {
                out.push(diag(&file, e.line().unwrap_or(1), describe(&e)));
            }
        }
        for (name, file) in &custom {
            if let Err(e) = templates.try_render(&templates.env, name, &vars) {
                out.push(diag(file, e.line().unwrap_or(1), describe(&e)));
            }
        }
        for (name, from) in &canned {
            let file = from
                .clone()
                .unwrap_or_else(|| canned_dir.join(format!("{name}.txt")));
            if let Err(e) = templates.try_canned(&templates.env, name, &vars) {
                out.push(diag(&file, e.line().unwrap_or(1), describe(&e)));
            }
        }
        templates
    }

    /// The file a mail template is read from (or would be).
    fn file(&self, name: &str, dir: &Path) -> PathBuf {
        self.sources
            .get(name)
            .cloned()
            .flatten()
            .unwrap_or_else(|| dir.join(format!("{name}.txt")))
    }

    /// Where each mail template came from: `(name, Some(file))`, or `None`
    /// for the built-in copy.
    pub fn sources(&self) -> impl Iterator<Item = (&str, Option<&Path>)> {
        self.sources.iter().map(|(n, p)| (n.as_str(), p.as_deref()))
    }

    /// The canned response names, sorted.
    pub fn canned_names(&self) -> &[String] {
        &self.canned
    }

    /// Whether a mail template `name` exists: a built-in one, or an
    /// admin's own `templates/NAME.txt`.
    pub fn has_template(&self, name: &str) -> bool {
        NAMES.contains(&name) || self.custom.iter().any(|c| c == name)
    }

    /// Whether a canned response `name` exists.
    pub fn has_canned(&self, name: &str) -> bool {
        self.canned.iter().any(|c| c == name)
    }

    fn try_render(
        &self,
        env: &Environment<'static>,
        name: &str,
        vars: &Vars,
    ) -> Result<Rendered, minijinja::Error> {
        let tmpl = env.get_template(&format!("{name}.txt"))?;
        let mut captured = tmpl.render_captured(Value::from(vars.clone()))?;
        let (subject, body) = captured.with_state_mut(|state| {
            let subject = state.render_block("subject")?;
            let body = state.render_block("body")?;
            Ok::<_, minijinja::Error>((subject, body))
        })?;
        Ok(Rendered {
            subject: header_value(&subject),
            body: body_text(&body),
        })
    }

    fn try_canned(
        &self,
        env: &Environment<'static>,
        name: &str,
        vars: &Vars,
    ) -> Result<String, minijinja::Error> {
        let tmpl = env.get_template(&format!("canned/{name}.txt"))?;
        Ok(tmpl
            .render(Value::from(vars.clone()))?
            .trim_end()
            .to_owned())
    }

    /// Render mail template `name` with `vars`. If the configured template
    /// fails, the built-in copy is tried before giving up.
    ///
    /// # Errors
    ///
    /// [`Error`] when neither renders (a missing variable in the caller's
    /// map: a bug).
    pub fn render(&self, name: &str, vars: &Vars) -> Result<Rendered, Error> {
        match self.try_render(&self.env, name, vars) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::error!(template = name, error = %describe(&e), "template failed, using the built-in copy");
                self.try_render(&self.builtin, name, vars)
                    .map_err(|e| Error {
                        name: name.to_owned(),
                        message: describe(&e),
                    })
            }
        }
    }

    /// Render canned response `name` with `vars`.
    ///
    /// # Errors
    ///
    /// [`Error`] when it does not exist or fails to render.
    pub fn render_canned(&self, name: &str, vars: &Vars) -> Result<String, Error> {
        self.try_canned(&self.env, name, vars).map_err(|e| Error {
            name: format!("canned/{name}"),
            message: describe(&e),
        })
    }
}

/// minijinja's message with its line, on one line.
fn describe(e: &minijinja::Error) -> String {
    let mut s = format!("{}", e.kind());
    if let Some(d) = e.detail() {
        s.push_str(": ");
        s.push_str(d);
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// Whether `name` may name a canned response (`/name` on a line).
pub fn is_canned_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A header value from untrusted text: every control character (CR and LF
/// included) becomes a space, runs of whitespace collapse, and the ends are
/// trimmed. Header injection needs a line break; none survives this.
pub fn header_value(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A body with `\n` line ends, no trailing blank lines, ending in one `\n`.
fn body_text(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let trimmed = unified.trim_end().trim_start_matches('\n');
    let mut out = String::with_capacity(trimmed.len() + 1);
    out.push_str(trimmed);
    out.push('\n');
    out
}

/// Sample values of every variable any template may use, for `check`.
pub fn sample() -> Vars {
    let mut v = Vars::new();
    for (k, s) in [
        ("customer_name", "Alice Example"),
        ("customer_email", "alice@customer.example"),
        ("ticket_number", "#1001"),
        ("ticket_tag", "[#1001]"),
        ("subject", "Printer on fire"),
        ("queue", "support"),
        ("queue_name", "Support"),
        ("priority", "Medium"),
        ("status", "Open"),
        ("issue_type", "General"),
        ("agent_name", "Bob"),
        ("agent_email", "bob@example.com"),
        ("support_address", "support@example.com"),
        ("message_text", "Hello,\nmy printer is on fire.\n"),
        ("reply_separator", crate::outbound::REPLY_SEPARATOR),
        ("failed_address", "alice@customer.example"),
        ("status_code", "5.1.1"),
        ("diagnostic", "550 5.1.1 user unknown"),
        ("alert_title", "Delivery failed"),
        ("alert_text", "A mail could not be delivered."),
        ("matched", "a phone number"),
        ("client_suspended", ""),
        ("new_participant", ""),
        ("ticket_id_number", "1001"),
        ("period", "since yesterday 08:00"),
        ("sla_kind", "warning"),
        ("sla_target", "first_response"),
        ("sla_target_name", "first response"),
        ("sla_policy", "standard"),
        ("sla_due", "2026-12-14 10:00 EST"),
        ("sla_left", "12m"),
        ("sla_escalated", ""),
        ("auto_close_days", "7"),
        ("rule_name", "chargebacks"),
        ("rule_note", "Chargeback keyword: handle today."),
        (
            "customer_url",
            "https://help.example.com/t/p1001.20500-0123456789abcdef",
        ),
    ] {
        v.insert(k, Value::from(s));
    }
    v.insert(
        "errors",
        Value::from(vec!["line 1: unknown command #clsoe".to_owned()]),
    );
    v.insert(
        "commands",
        Value::from(vec![
            "#note TEXT".to_owned(),
            "#close".to_owned(),
            "#priority low|medium|high|urgent".to_owned(),
        ]),
    );
    let mut item = BTreeMap::new();
    item.insert("ticket_number", Value::from("#1001"));
    item.insert("subject", Value::from("Printer on fire"));
    item.insert("priority", Value::from("Medium"));
    item.insert("status", Value::from("Open"));
    item.insert("sender", Value::from("alice@customer.example.org"));
    item.insert("mailbox", Value::from("support@example.com"));
    item.insert("received", Value::from("2026-01-05 08:00 EST"));
    v.insert("items", Value::from(vec![Value::from(item)]));
    let ratings: Vec<Value> = RATING_LABELS
        .iter()
        .map(|&(score, label)| {
            let mut r = BTreeMap::new();
            r.insert("score", Value::from(score));
            r.insert("label", Value::from(label));
            r.insert(
                "link",
                Value::from(format!(
                    "mailto:support+s1001.{score}-0011223344556677@example.com"
                )),
            );
            Value::from(r)
        })
        .collect();
    v.insert("ratings", Value::from(ratings));
    let mut withheld = BTreeMap::new();
    withheld.insert("name", Value::from("scan.pdf"));
    withheld.insert("content_type", Value::from("application/pdf"));
    withheld.insert("size", Value::from(12_582_912));
    v.insert(
        "attachments_withheld",
        Value::from(vec![Value::from(withheld)]),
    );
    v.insert("agent_signed", Value::from(false));
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_renders_with_sample_data() {
        let mut out = Vec::new();
        let t = Templates::load(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")),
            &mut out,
        );
        assert!(out.is_empty(), "{out:#?}");
        for name in NAMES {
            let r = t.render(name, &sample()).unwrap();
            assert!(!r.subject.is_empty(), "{name} has an empty subject");
            assert!(
                r.body.ends_with('\n') && !r.body.ends_with("\n\n"),
                "{name}: {:?}",
                r.body
            );
        }
        assert_eq!(t.canned_names(), ["thanks"]);
        assert!(
            t.render_canned("thanks", &sample())
                .unwrap()
                .contains("Alice Example")
        );
    }

    #[test]
    fn acknowledgement_subject_carries_the_ticket_tag() {
        let t = Templates::builtin();
        let r = t.render("acknowledgement", &sample()).unwrap();
        assert!(r.subject.contains("[#1001]"), "{}", r.subject);
        assert!(r.subject.contains("Printer on fire"), "{}", r.subject);
    }

    #[test]
    fn header_values_lose_every_line_break() {
        assert_eq!(
            header_value("Hi\r\nBcc: victim@x.test\n\tmore\u{0}"),
            "Hi Bcc: victim@x.test more"
        );
        let mut vars = sample();
        vars.insert("subject", Value::from("Help\r\nBcc: evil@x.test"));
        let r = Templates::builtin()
            .render("acknowledgement", &vars)
            .unwrap();
        assert!(
            !r.subject.contains('\n') && !r.subject.contains('\r'),
            "{:?}",
            r.subject
        );
    }

    /// A config dir with `files` under `templates/`.
    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join("templates").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    // trim_blocks eats the line break after a block tag that ends a line:
    // the shipped digest must still start every item on a line of its own,
    // with a time and without one.
    #[test]
    fn the_digest_starts_each_item_on_a_line_of_its_own() {
        let item = |n: &str, received: &str| {
            let mut i = BTreeMap::new();
            i.insert("ticket_number", Value::from(n));
            i.insert("subject", Value::from("Subject"));
            i.insert("priority", Value::from("Low"));
            i.insert("status", Value::from("Open"));
            i.insert("sender", Value::from("a@customer.example"));
            i.insert("mailbox", Value::from("support@example.com"));
            i.insert("received", Value::from(received));
            Value::from(i)
        };
        let mut vars = sample();
        vars.insert(
            "items",
            Value::from(vec![
                item("#1001", "2026-01-05 08:00 EST"),
                item("#1002", ""),
                item("#1003", "2026-01-05 09:00 EST"),
            ]),
        );
        let r = Templates::builtin().render("digest", &vars).unwrap();
        for n in ["#1001", "#1002", "#1003"] {
            assert_eq!(
                r.body.lines().filter(|l| l.starts_with(n)).count(),
                1,
                "{n} does not start a line:\n{}",
                r.body
            );
        }
        assert!(
            r.body
                .contains("support@example.com, 2026-01-05 08:00 EST\n#1002"),
            "{}",
            r.body
        );
    }

    #[test]
    fn a_syntax_error_names_the_file_and_line() {
        let dir = dir_with(&[(
            "acknowledgement.txt",
            "{% block subject %}Re: {{ subject }}{% endblock %}\n{% block body %}\nHello {{ customer_name\n{% endblock %}\n",
        )]);
        let mut out = Vec::new();
        let t = Templates::load(&dir.path().join("templates"), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(
            out[0].file.ends_with("templates/acknowledgement.txt"),
            "{out:?}"
        );
        // minijinja sees the unclosed `{{` when the next tag starts.
        assert_eq!(out[0].line, 4, "{out:?}");
        assert!(out[0].message.contains("syntax error"), "{out:?}");
        // The built-in copy stands in, so a server never sends nothing.
        assert!(t.render("acknowledgement", &sample()).is_ok());
    }

    #[test]
    fn an_unknown_variable_names_the_file_and_line() {
        let dir = dir_with(&[(
            "notification.txt",
            "{% block subject %}{{ ticket_tag }}{% endblock %}\n{% block body %}\nline two\n{{ custmer_name }}\n{% endblock %}\n",
        )]);
        let mut out = Vec::new();
        Templates::load(&dir.path().join("templates"), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(
            out[0].file.ends_with("templates/notification.txt"),
            "{out:?}"
        );
        assert_eq!(out[0].line, 4, "{out:?}");
        assert!(out[0].message.contains("undefined"), "{out:?}");
    }

    #[test]
    fn a_missing_block_is_reported() {
        let dir = dir_with(&[("alert.txt", "no blocks at all\n")]);
        let mut out = Vec::new();
        Templates::load(&dir.path().join("templates"), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].file.ends_with("templates/alert.txt"), "{out:?}");
    }

    #[test]
    fn canned_responses_are_loaded_from_the_canned_folder() {
        let dir = dir_with(&[
            (
                "canned/refund.txt",
                "Hi {{ customer_name }}, your refund is on its way.\n",
            ),
            ("canned/Bad Name.txt", "x"),
        ]);
        let mut out = Vec::new();
        let t = Templates::load(&dir.path().join("templates"), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].message.contains("Bad Name"), "{out:?}");
        assert_eq!(t.canned_names(), ["refund", "thanks"]);
        assert_eq!(
            t.render_canned("refund", &sample()).unwrap(),
            "Hi Alice Example, your refund is on its way."
        );
    }
}
