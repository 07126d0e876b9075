//! Agent commands: the `#command` lines at the top of an agent's mail and
//! the `/canned` lines in its body.
//!
//! A pure parse of the agent's new text (quotes already stripped). Receives
//! the text and the names it can check (agents, canned responses); returns
//! a [`Script`]: the commands in order, the body left to relay, and every
//! problem found. Commands are the lines at the top that start with `#` and
//! a letter (blank lines before them are skipped); the first other line
//! ends them. A line that is only `/name` (a canned response name) anywhere
//! in the body is expanded later by [`crate::agent`].
//!
//! Nothing is half-done: with any problem, no command runs and nothing is
//! relayed (the agent gets an answer listing the problems instead).

use serde::Serialize;

use crate::config::Priority;

/// One command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", content = "value", rename_all = "snake_case")]
pub enum Command {
    /// `#note [text]`: the whole mail is an internal note, never relayed.
    Note,
    /// `#close`.
    Close,
    /// `#resolve`.
    Resolve,
    /// `#reopen`.
    Reopen,
    /// `#priority low|medium|high|urgent`.
    Priority(Priority),
    /// `#assign NAME` (an `[agents]` name, as configured).
    Assign(String),
    /// `#type TYPE` (the rest of the line).
    Type(String),
    /// `#tag TAG` (one word).
    Tag(String),
    /// `#merge NUMBER`: merge this ticket into ticket NUMBER.
    Merge(i64),
    /// `#cc ADDRESS`: copy ADDRESS on the agents' replies from now on (a
    /// participant held after writing in, or anyone new).
    Cc(String),
    /// `#unsuspend [ADDRESS]`: lift the suspension of a client (the one
    /// this ticket is about, or ADDRESS); admins only.
    Unsuspend(Option<String>),
    /// `#move QUEUE`: move the ticket to another queue (a sales lead to
    /// support, or back), its messages and history kept.
    Move(crate::domain::Queue),
    /// `#split`, in a reply to the notification of a message: that
    /// message and the ones after it move to a new ticket.
    Split,
}

impl Command {
    /// The command's name, as written.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Note => "note",
            Command::Close => "close",
            Command::Resolve => "resolve",
            Command::Reopen => "reopen",
            Command::Priority(_) => "priority",
            Command::Assign(_) => "assign",
            Command::Type(_) => "type",
            Command::Tag(_) => "tag",
            Command::Merge(_) => "merge",
            Command::Cc(_) => "cc",
            Command::Unsuspend(_) => "unsuspend",
            Command::Move(_) => "move",
            Command::Split => "split",
        }
    }
}

/// Every command with its syntax, for the answer to a malformed one.
pub const SYNTAX: [&str; 13] = [
    "#note TEXT        internal note, not sent to the customer",
    "#close",
    "#resolve",
    "#reopen",
    "#priority low|medium|high|urgent",
    "#assign NAME      an agent's name",
    "#type TYPE        the issue type",
    "#tag TAG          one word",
    "#merge NUMBER     merge this ticket into ticket NUMBER",
    "#cc ADDRESS       copy ADDRESS on replies from now on",
    "#unsuspend [ADDRESS]  lift a client's suspension (admins)",
    "#move QUEUE       move the ticket to support, sales, ...",
    "#split            (replying to a message's notification) split it off",
];

const NAMES: [&str; 13] = [
    "cc",
    "note",
    "close",
    "resolve",
    "reopen",
    "priority",
    "assign",
    "type",
    "tag",
    "merge",
    "unsuspend",
    "move",
    "split",
];

/// The parsed mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Script {
    /// Commands with their 1-based line numbers, in order.
    pub commands: Vec<(usize, Command)>,
    /// Text of a `#note` line after the command word.
    pub note_text: String,
    /// The text after the command lines.
    pub body: String,
    /// Canned response names used by `/name` lines, in order.
    pub canned: Vec<String>,
    /// What is wrong, one sentence each, with its line.
    pub errors: Vec<String>,
}

impl Script {
    /// Whether the mail is an internal note.
    pub fn is_note(&self) -> bool {
        self.commands.iter().any(|(_, c)| *c == Command::Note)
    }
}

/// What the parser checks names against.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// `[agents]` names.
    pub agents: &'a [String],
    /// Canned response names.
    pub canned: &'a [String],
    /// How ticket numbers are written (`#{n}`, per queue), to accept
    /// `#merge #1040` and `#merge S-2026-0042`.
    pub tickets: &'a crate::config::Tickets,
}

/// Whether `line` is a command line: `#` then an ASCII letter.
fn is_command_line(line: &str) -> bool {
    let mut chars = line.trim_start().chars();
    chars.next() == Some('#') && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// The edit distance between two short words (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parse the agent's new text.
pub fn parse(text: &str, known: &Known<'_>) -> Script {
    let mut script = Script::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    while i < lines.len() && is_command_line(lines[i]) {
        let n = i + 1;
        let line = lines[i].trim();
        let (word, rest) = match line[1..].split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (&line[1..], ""),
        };
        let name = word.to_ascii_lowercase();
        if name == "note" {
            script.note_text = rest.to_owned();
        }
        match command(&name, word, rest, known) {
            Ok(c) => script.commands.push((n, c)),
            Err(msg) => script.errors.push(format!("line {n}: {msg}")),
        }
        i += 1;
    }
    body(&lines[i..], i, known, &mut script);
    script
}

/// One command line, `#word rest` (`name` is `word` lower-case): the
/// command, or what is wrong with it.
fn command(name: &str, word: &str, rest: &str, known: &Known<'_>) -> Result<Command, String> {
    let no_arg = |cmd: Command| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(format!("#{name} takes no argument, found `{rest}`"))
        }
    };
    match name {
        "note" => Ok(Command::Note),
        "close" => no_arg(Command::Close),
        "resolve" => no_arg(Command::Resolve),
        "reopen" => no_arg(Command::Reopen),
        "priority" => priority(rest),
        "assign" => assign(rest, known),
        "type" => issue_type(rest),
        "tag" => tag(rest),
        "merge" => merge(rest, known),
        "cc" => cc(rest),
        "unsuspend" => unsuspend(rest),
        "move" => move_to(rest),
        "split" => no_arg(Command::Split),
        _ => {
            let guess = NAMES
                .iter()
                .map(|k| (distance(name, k), *k))
                .min()
                .filter(|(d, _)| *d <= 2)
                .map(|(_, k)| format!("; did you mean #{k}?"))
                .unwrap_or_default();
            Err(format!("unknown command #{word}{guess}"))
        }
    }
}

/// `#move QUEUE`: one of the queues postdesk keeps.
fn move_to(rest: &str) -> Result<Command, String> {
    let names: Vec<&str> = crate::domain::Queue::ALL
        .iter()
        .map(|q| q.as_str())
        .collect();
    match crate::domain::Queue::from_name(rest.trim()) {
        Some(q) => Ok(Command::Move(q)),
        None if rest.trim().is_empty() => Err(format!("#move needs a queue: {}", names.join(", "))),
        None => Err(format!(
            "#move `{rest}` is not a queue; the queues are {}",
            names.join(", ")
        )),
    }
}

/// `#priority low|medium|high|urgent`.
fn priority(rest: &str) -> Result<Command, String> {
    match Priority::parse(rest) {
        Some(p) => Ok(Command::Priority(p)),
        None if rest.is_empty() => Err("#priority needs one of low, medium, high, urgent".into()),
        None => Err(format!(
            "#priority `{rest}` is not one of low, medium, high, urgent"
        )),
    }
}

/// `#assign NAME`, NAME an `[agents]` name in any case.
fn assign(rest: &str, known: &Known<'_>) -> Result<Command, String> {
    if rest.is_empty() {
        return Err("#assign needs an agent's name".into());
    }
    match known.agents.iter().find(|a| a.eq_ignore_ascii_case(rest)) {
        Some(a) => Ok(Command::Assign(a.clone())),
        None => Err(format!(
            "#assign: no agent named `{rest}` (agents: {})",
            if known.agents.is_empty() {
                "none configured".to_owned()
            } else {
                known.agents.join(", ")
            }
        )),
    }
}

/// `#type TYPE`, at most 80 characters.
fn issue_type(rest: &str) -> Result<Command, String> {
    if rest.is_empty() {
        Err("#type needs an issue type".into())
    } else if rest.chars().count() > 80 {
        Err("#type: the issue type is longer than 80 characters".into())
    } else {
        Ok(Command::Type(rest.to_owned()))
    }
}

/// `#tag TAG`, one word of at most 64 characters, kept lower-case.
fn tag(rest: &str) -> Result<Command, String> {
    let ok = !rest.is_empty()
        && rest.chars().count() <= 64
        && rest
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if ok {
        Ok(Command::Tag(rest.to_lowercase()))
    } else if rest.is_empty() {
        Err("#tag needs a tag".into())
    } else {
        Err(format!(
            "#tag `{rest}` must be one word of letters, digits, - _ . : /"
        ))
    }
}

/// `#merge NUMBER`, bare or written as a number format writes it
/// (`#1040`, `S-2026-0042`).
fn merge(rest: &str, known: &Known<'_>) -> Result<Command, String> {
    match known.tickets.parse_number(rest) {
        Some(number) if number > 0 => Ok(Command::Merge(number)),
        _ if rest.is_empty() => Err("#merge needs the number of the ticket to merge into".into()),
        _ => Err(format!("#merge `{rest}` is not a ticket number")),
    }
}

/// `#cc ADDRESS`, angle brackets allowed, kept lower-case.
fn cc(rest: &str) -> Result<Command, String> {
    let address = rest.trim_start_matches('<').trim_end_matches('>');
    if rest.is_empty() {
        Err("#cc needs an e-mail address".into())
    } else if crate::outbound::compose::is_valid_address(address) {
        Ok(Command::Cc(address.to_ascii_lowercase()))
    } else {
        Err(format!("#cc `{rest}` is not an e-mail address"))
    }
}

/// `#unsuspend [ADDRESS]`.
fn unsuspend(rest: &str) -> Result<Command, String> {
    if rest.is_empty() {
        Ok(Command::Unsuspend(None))
    } else if rest.contains('@') && !rest.contains(char::is_whitespace) {
        let address = rest.trim_start_matches('<').trim_end_matches('>');
        Ok(Command::Unsuspend(Some(address.to_lowercase())))
    } else {
        Err(format!("#unsuspend `{rest}` is not an e-mail address"))
    }
}

/// The lines after the commands (`lines`, the first of them line
/// `start + 1`): the body to relay, and the `/name` lines in it, checked
/// against the canned responses.
fn body(lines: &[&str], start: usize, known: &Known<'_>, script: &mut Script) {
    let mut body_lines = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('/')
            && crate::outbound::templates::is_canned_name(name)
        {
            if known.canned.iter().any(|c| c == name) {
                script.canned.push(name.to_owned());
            } else {
                script.errors.push(format!(
                    "line {}: unknown canned response /{name} (known: {})",
                    start + k + 1,
                    if known.canned.is_empty() {
                        "none".to_owned()
                    } else {
                        known
                            .canned
                            .iter()
                            .map(|c| format!("/{c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
            }
        }
        body_lines.push(*line);
    }
    script.body = body_lines.join("\n").trim().to_owned();
}

/// `body` with each line that is only `/name` replaced by `expand(name)`.
pub fn expand_canned(body: &str, mut expand: impl FnMut(&str) -> Option<String>) -> String {
    body.lines()
        .map(|line| {
            let t = line.trim();
            t.strip_prefix('/')
                .filter(|n| crate::outbound::templates::is_canned_name(n))
                .and_then(&mut expand)
                .unwrap_or_else(|| line.to_owned())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn known() -> (Vec<String>, Vec<String>) {
        (vec!["bob".into(), "Carol".into()], vec!["thanks".into()])
    }

    fn run(text: &str) -> Script {
        let (agents, canned) = known();
        let tickets = crate::config::Tickets::new(
            crate::config::NumberFormat::parse("#{n}").unwrap(),
            vec![(
                "sales".into(),
                crate::config::NumberFormat::parse("S-{year}-{n:04}").unwrap(),
            )],
            1,
            80,
            Priority::Medium,
            "General".into(),
        )
        .unwrap();
        parse(
            text,
            &Known {
                agents: &agents,
                canned: &canned,
                tickets: &tickets,
            },
        )
    }

    #[test]
    fn commands_one_row_each() {
        // (text, commands, body, errors)
        let rows: Vec<(&str, Vec<Command>, &str, usize)> = vec![
            ("Hello\n", vec![], "Hello", 0),
            ("#close\n", vec![Command::Close], "", 0),
            (
                "\n\n#resolve\nDone, thanks.\n",
                vec![Command::Resolve],
                "Done, thanks.",
                0,
            ),
            ("#reopen\n", vec![Command::Reopen], "", 0),
            (
                "#priority HIGH\n",
                vec![Command::Priority(Priority::High)],
                "",
                0,
            ),
            (
                "#priority urgent\n#assign carol\nOn it.",
                vec![
                    Command::Priority(Priority::Urgent),
                    Command::Assign("Carol".into()),
                ],
                "On it.",
                0,
            ),
            (
                "#type Billing question\n",
                vec![Command::Type("Billing question".into())],
                "",
                0,
            ),
            ("#tag VIP\n", vec![Command::Tag("vip".into())], "", 0),
            ("#merge 1040\n", vec![Command::Merge(1040)], "", 0),
            ("#merge #1040\n", vec![Command::Merge(1040)], "", 0),
            ("#merge S-2026-0042\n", vec![Command::Merge(42)], "", 0),
            (
                "#note customer sounds upset\nsee call log",
                vec![Command::Note],
                "see call log",
                0,
            ),
            // A tag in the subject style is text, not a command.
            ("#1040 is related\n", vec![], "#1040 is related", 0),
            // Commands only at the top: a later #close is text.
            ("Hi\n#close\n", vec![], "Hi\n#close", 0),
            ("#clsoe\n", vec![], "", 1),
            ("#priority\n", vec![], "", 1),
            ("#priority soon\n", vec![], "", 1),
            ("#close now\n", vec![], "", 1),
            ("#assign dave\n", vec![], "", 1),
            ("#assign\n", vec![], "", 1),
            ("#tag two words\n", vec![], "", 1),
            ("#merge abc\n", vec![], "", 1),
            ("#merge\n", vec![], "", 1),
            ("#type\n", vec![], "", 1),
            ("#unsuspend\n", vec![Command::Unsuspend(None)], "", 0),
            (
                "#cc <Carol@Customer.test>\n",
                vec![Command::Cc("carol@customer.test".into())],
                "",
                0,
            ),
            ("#cc\n", vec![], "", 1),
            ("#cc \"a>,evil@evil.test\"@cust.test\n", vec![], "", 1),
            (
                "#unsuspend <Ann@Customer.test>\n",
                vec![Command::Unsuspend(Some("ann@customer.test".into()))],
                "",
                0,
            ),
            ("#unsuspend ann\n", vec![], "", 1),
            ("#unsuspend ann @customer.test\n", vec![], "", 1),
            ("#unsuspnd\n", vec![], "", 1),
        ];
        for (text, commands, body, errors) in rows {
            let s = run(text);
            let got: Vec<Command> = s.commands.iter().map(|(_, c)| c.clone()).collect();
            assert_eq!(got, commands, "{text:?}");
            assert_eq!(s.body, body, "{text:?}");
            assert_eq!(s.errors.len(), errors, "{text:?}: {:?}", s.errors);
        }
    }

    #[test]
    fn an_unknown_command_suggests_the_nearest_and_names_the_line() {
        let s = run("\n#prority high\n");
        assert_eq!(
            s.errors,
            ["line 2: unknown command #prority; did you mean #priority?"]
        );
        let s = run("#frobnicate\n");
        assert_eq!(s.errors, ["line 1: unknown command #frobnicate"]);
    }

    #[test]
    fn notes_keep_their_text() {
        let s = run("#note called her, will ship Monday\n");
        assert!(s.is_note());
        assert_eq!(s.note_text, "called her, will ship Monday");
    }

    #[test]
    fn canned_lines_are_found_and_unknown_ones_reported() {
        let s = run("Hi\n/thanks\n");
        assert_eq!(s.canned, ["thanks"]);
        assert!(s.errors.is_empty());
        let s = run("Hi\n/refund\n");
        assert_eq!(
            s.errors,
            ["line 2: unknown canned response /refund (known: /thanks)"]
        );
        // Paths and URLs are not canned names.
        let s = run("see /etc/hosts\n/etc/hosts\n/Thanks now\n");
        assert!(s.errors.is_empty() && s.canned.is_empty(), "{s:?}");
        assert_eq!(
            expand_canned("Hi\n  /thanks  \nBye", |n| Some(format!("[{n}]"))),
            "Hi\n[thanks]\nBye"
        );
    }
}
