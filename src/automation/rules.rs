//! `[[automation]]` as written, and its check into [`Rule`]s: every
//! problem at its `file:line:column` (unknown keys, triggers, agents,
//! teams, templates, queues, calendars, bad regexes and durations).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::{Actions, Assign, Conditions, Keywords, Notify, Rule, Trigger};
use crate::config::Diagnostic;
use crate::config::diag::Source;
use crate::domain::{Priority, Queue, Status};
use crate::sla::Calendar;

/// A string or a list of strings (`queue = "support"` or `["support"]`).
#[derive(Debug, Clone, Default)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        match Form::deserialize(d) {
            Ok(Form::One(s)) => Ok(List(vec![s])),
            Ok(Form::Many(v)) => Ok(List(v)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}

/// One `[[automation]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name, in events and `explain`.
    pub name: Spanned<String>,
    /// Triggers.
    pub on: Spanned<List>,
    /// `[automation.if]`.
    #[serde(default)]
    pub r#if: RawIf,
    /// `[automation.then]`.
    #[serde(default)]
    pub then: RawThen,
}

/// `[automation.if]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIf {
    queue: Option<Spanned<List>>,
    priority: Option<Spanned<List>>,
    status: Option<Spanned<List>>,
    issue_type: Option<Spanned<List>>,
    client: Option<Spanned<List>>,
    mailbox: Option<Spanned<List>>,
    from_domain: Option<Spanned<List>>,
    tags: Option<Spanned<List>>,
    subject_matches: Option<Spanned<String>>,
    body_keywords: Option<Spanned<List>>,
    business_hours: Option<Spanned<String>>,
    outside_business_hours: Option<Spanned<String>>,
    idle: Option<Spanned<String>>,
    idle_calendar: Option<Spanned<String>>,
}

/// `[automation.then]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThen {
    assign: Option<Spanned<String>>,
    set_priority: Option<Spanned<String>>,
    set_status: Option<Spanned<String>>,
    set_type: Option<Spanned<String>>,
    set_queue: Option<Spanned<String>>,
    add_tags: Option<Spanned<List>>,
    remove_tags: Option<Spanned<List>>,
    note: Option<Spanned<String>>,
    reply_template: Option<Spanned<String>>,
    notify: Option<Spanned<List>>,
    #[serde(default)]
    stop: bool,
}

/// A file `automation/NAME.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFile {
    /// Its rules.
    pub automation: Vec<RawRule>,
}

/// What the rules may name.
pub struct Known<'a> {
    /// Agent names.
    pub agents: Vec<&'a str>,
    /// Team (queue) names to member names.
    pub teams: &'a BTreeMap<String, Vec<String>>,
    /// Whether a template `NAME.txt` exists.
    pub template: &'a dyn Fn(&str) -> bool,
    /// Calendars by name.
    pub calendars: &'a BTreeMap<String, Arc<Calendar>>,
}

/// Check every rule of every file, in order; duplicate names across files
/// are errors.
pub(crate) fn check(
    files: Vec<(&Source, Vec<RawRule>)>,
    known: &Known<'_>,
    out: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    let mut seen = HashSet::new();
    let mut rules = Vec::new();
    for (src, raws) in files {
        for raw in raws {
            let before = out.len();
            let name = raw.name.get_ref().trim().to_owned();
            if name.is_empty() {
                src.error(out, &raw.name, "a rule needs a name");
            } else if !seen.insert(name.clone()) {
                src.error(out, &raw.name, format!("rule `{name}` is defined twice"));
            }
            let rule = check_rule(raw, name, src, known, out);
            if out.len() == before {
                rules.push(rule);
            }
        }
    }
    rules
}

fn check_rule(
    raw: RawRule,
    name: String,
    src: &Source,
    known: &Known<'_>,
    out: &mut Vec<Diagnostic>,
) -> Rule {
    let mut on = Vec::new();
    for t in &raw.on.get_ref().0 {
        match Trigger::parse(t) {
            Some(t) if !on.contains(&t) => on.push(t),
            Some(_) => {}
            None => {
                let all: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
                src.error(
                    out,
                    &raw.on,
                    format!("unknown trigger `{t}`; one of {}", all.join(", ")),
                );
            }
        }
    }
    if raw.on.get_ref().0.is_empty() {
        src.error(out, &raw.on, "`on` names no trigger");
    }
    let conditions = check_if(raw.r#if, src, known, out);
    if on.contains(&Trigger::Idle) && conditions.idle.is_none() {
        src.error(
            out,
            &raw.on,
            format!("rule `{name}` runs on `idle` but sets no `idle = \"48h\"` in its `if`"),
        );
    }
    let (actions, stop) = check_then(raw.then, src, known, out);
    Rule {
        name,
        on,
        conditions,
        actions,
        stop,
    }
}

/// The list's values, each checked by `f` (an error names the list).
fn each<T>(
    list: Option<Spanned<List>>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
    f: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut values = Vec::new();
    for v in &list.get_ref().0 {
        match f(v.trim()) {
            Ok(x) => values.push(x),
            Err(e) => src.error(out, &list, e),
        }
    }
    values
}

fn queue_name(q: &str) -> Result<String, String> {
    Queue::from_name(q)
        .map(|q| q.as_str().to_owned())
        .ok_or_else(|| {
            let all: Vec<&str> = Queue::ALL.iter().map(|q| q.as_str()).collect();
            format!("unknown queue `{q}`; one of {}", all.join(", "))
        })
}

fn priority_name(p: &str) -> Result<String, String> {
    Priority::parse(p)
        .map(|p| p.as_str().to_owned())
        .ok_or_else(|| format!("unknown priority `{p}`; one of Low, Medium, High, Urgent"))
}

fn status_name(s: &str) -> Result<String, String> {
    Status::parse(s)
        .map(|s| s.as_str().to_owned())
        .ok_or_else(|| format!("unknown status `{s}`; one of Open, Replied, Resolved, Closed"))
}

fn calendar(
    name: &Spanned<String>,
    known: &Known<'_>,
    src: &Source,
    out: &mut Vec<Diagnostic>,
) -> Option<Arc<Calendar>> {
    let c = known.calendars.get(name.get_ref().trim()).cloned();
    if c.is_none() {
        let all: Vec<&str> = known.calendars.keys().map(String::as_str).collect();
        src.error(
            out,
            name,
            format!(
                "unknown calendar `{}`; define it in [sla.calendar.{}]{}",
                name.get_ref(),
                name.get_ref(),
                if all.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", all.join(", "))
                }
            ),
        );
    }
    c
}

fn check_if(raw: RawIf, src: &Source, known: &Known<'_>, out: &mut Vec<Diagnostic>) -> Conditions {
    let lower = |s: &str| Ok(s.to_ascii_lowercase());
    let subject_matches = raw
        .subject_matches
        .and_then(|r| match regex::Regex::new(r.get_ref()) {
            Ok(re) => Some(re),
            Err(e) => {
                src.error(out, &r, format!("bad regex: {e}"));
                None
            }
        });
    let body_keywords = raw.body_keywords.and_then(|k| {
        let words: Vec<String> = k
            .get_ref()
            .0
            .iter()
            .map(|w| crate::detect::fold(w.trim()))
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            src.error(out, &k, "`body_keywords` lists no keyword");
            return None;
        }
        match aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&words)
        {
            Ok(matcher) => Some(Keywords { words, matcher }),
            Err(e) => {
                src.error(out, &k, format!("keywords: {e}"));
                None
            }
        }
    });
    let business_hours = match (raw.business_hours, raw.outside_business_hours) {
        (Some(c), None) => calendar(&c, known, src, out).map(|c| (c, true)),
        (None, Some(c)) => calendar(&c, known, src, out).map(|c| (c, false)),
        (Some(c), Some(_)) => {
            src.error(
                out,
                &c,
                "`business_hours` and `outside_business_hours` exclude each other",
            );
            None
        }
        (None, None) => None,
    };
    let idle = raw
        .idle
        .and_then(|d| match crate::sla::parse_duration(d.get_ref()) {
            Ok(secs) => Some(secs),
            Err(e) => {
                src.error(out, &d, e);
                None
            }
        });
    let idle_calendar = raw
        .idle_calendar
        .and_then(|c| calendar(&c, known, src, out));
    Conditions {
        queue: each(raw.queue, src, out, queue_name),
        priority: each(raw.priority, src, out, priority_name),
        status: each(raw.status, src, out, status_name),
        issue_type: each(raw.issue_type, src, out, |s| Ok(s.to_owned())),
        client: each(raw.client, src, out, |s| Ok(s.to_owned())),
        mailbox: each(raw.mailbox, src, out, |s| {
            if s.contains('@') {
                Ok(s.to_ascii_lowercase())
            } else {
                Err(format!("mailbox `{s}` is not an address"))
            }
        }),
        from_domain: each(raw.from_domain, src, out, |s| {
            Ok(s.trim_start_matches('@').to_ascii_lowercase())
        }),
        tags: each(raw.tags, src, out, lower),
        subject_matches,
        body_keywords,
        business_hours,
        idle,
        idle_calendar,
    }
}

fn check_then(
    raw: RawThen,
    src: &Source,
    known: &Known<'_>,
    out: &mut Vec<Diagnostic>,
) -> (Actions, bool) {
    let stop = raw.stop;
    let one = |v: Option<Spanned<String>>,
               out: &mut Vec<Diagnostic>,
               f: &dyn Fn(&str) -> Result<String, String>| {
        v.and_then(|v| match f(v.get_ref().trim()) {
            Ok(x) => Some(x),
            Err(e) => {
                src.error(out, &v, e);
                None
            }
        })
    };
    let agent = |name: &str| -> Result<String, String> {
        known
            .agents
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .map(|a| (*a).to_owned())
            .ok_or_else(|| format!("`{name}` is not an agent; add it to [agents]"))
    };
    let team = |name: &str| -> Result<String, String> {
        let q = name.to_ascii_lowercase();
        if known.teams.contains_key(&q) {
            Ok(q)
        } else {
            Err(format!("no team `{name}`; add it to [teams]"))
        }
    };
    let assign = raw.assign.and_then(|a| {
        let v = a.get_ref().trim();
        let r = match v.split_once(':') {
            Some(("least_busy", t)) => team(t).map(Assign::LeastBusy),
            Some(("round_robin", t)) => team(t).map(Assign::RoundRobin),
            Some((how, _)) => Err(format!(
                "unknown assignment `{how}`; an agent, least_busy:TEAM or round_robin:TEAM"
            )),
            None => agent(v).map(Assign::Agent),
        };
        match r {
            Ok(x) => Some(x),
            Err(e) => {
                src.error(out, &a, e);
                None
            }
        }
    });
    let set_priority = one(raw.set_priority, out, &priority_name);
    let set_status = one(raw.set_status, out, &status_name);
    let set_queue = one(raw.set_queue, out, &queue_name);
    let set_type = one(raw.set_type, out, &|s| {
        if s.is_empty() {
            Err("`set_type` is empty".to_owned())
        } else {
            Ok(s.to_owned())
        }
    });
    let reply_template = one(raw.reply_template, out, &|s| {
        if (known.template)(s) {
            Ok(s.to_owned())
        } else {
            Err(format!("no template `{s}`; add templates/{s}.txt"))
        }
    });
    let tag = |s: &str| {
        if s.is_empty() {
            Err("a tag is empty".to_owned())
        } else {
            Ok(s.to_ascii_lowercase())
        }
    };
    let notify = each(raw.notify, src, out, |s| {
        if s == "admins" {
            Ok(Notify::Admins)
        } else if let Some(t) = s.strip_prefix("team:") {
            team(t).map(Notify::Team)
        } else if s.contains('@') {
            if s.chars().any(|c| c.is_whitespace() || c.is_control()) || s.starts_with('@') {
                Err(format!("`{s}` is not an address"))
            } else {
                Ok(Notify::Address(s.to_ascii_lowercase()))
            }
        } else {
            agent(s).map(Notify::Agent)
        }
    });
    let actions = Actions {
        assign,
        set_priority,
        set_status,
        set_type,
        set_queue,
        add_tags: each(raw.add_tags, src, out, tag),
        remove_tags: each(raw.remove_tags, src, out, tag),
        note: raw.note.map(Spanned::into_inner),
        reply_template,
        notify,
    };
    (actions, stop)
}
