//! `postdesk check` names the file, line and column of every error.
//!
//! The positions asserted here are where a person would put the cursor: the
//! first character of an unknown key, of a value of the wrong type, or of
//! the token the TOML syntax does not allow.

mod common;

use std::process::{Command, Output, Stdio};

use common::{BIN, Env, Options, REPO, run_command};

/// `postdesk check` against `env`'s config dir.
fn check(env: &Env) -> Output {
    env.run(&["check"])
}

/// stdout and stderr together: where the errors go is the binary's choice.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_fails_naming(out: &Output, positions: &[&str]) {
    let text = all_output(out);
    assert_eq!(out.status.code(), Some(1), "check should exit 1:\n{text}");
    for p in positions {
        assert!(
            text.lines().any(|l| l.contains(p)),
            "no line names {p:?}; output was:\n{text}"
        );
    }
}

fn env_with_rules(rules: &str) -> Env {
    let env = Env::new(&Options::default());
    env.write_config("rules.toml", rules);
    env
}

#[test]
fn shipped_config_passes_check() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", REPO, "--data"])
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_command(cmd, None, "postdesk check --config REPO");
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "shipped rules.toml fails check:\n{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .to_ascii_lowercase()
            .contains("ok"),
        "check prints a short OK summary on stdout:\n{text}"
    );
}

#[test]
fn test_harness_config_passes_check() {
    let env = Env::new(&Options {
        max_message_size: Some(10_000),
        max_errors: Some(3),
        ..Options::default()
    });
    let out = check(&env);
    assert!(out.status.success(), "{}", all_output(&out));
}

#[test]
fn unknown_key_is_reported_at_its_line_and_column() {
    let env = env_with_rules(
        "[server]\n\
         hostname = \"helpdesk.example.com\"\n\
         \n\
         [limits]\n\
         max_mesage_size = 10\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:5:1:"]);
    assert!(
        all_output(&out).contains("max_mesage_size"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn unknown_table_is_reported_at_its_line_and_column() {
    let env = env_with_rules(
        "[server]\n\
         hostname = \"helpdesk.example.com\"\n\
         \n\
         [limts]\n\
         max_errors = 3\n",
    );
    assert_fails_naming(&check(&env), &["rules.toml:4:"]);
}

#[test]
fn toml_syntax_error_is_reported_at_its_line_and_column() {
    let env = env_with_rules(
        "[server]\n\
         hostname = = \"helpdesk.example.com\"\n",
    );
    // The second `=` is the token TOML does not allow: column 12.
    assert_fails_naming(&check(&env), &["rules.toml:2:12:"]);
}

#[test]
fn value_of_the_wrong_type_is_reported_at_the_value() {
    let env = env_with_rules(
        "[limits]\n\
         max_message_size = \"big\"\n",
    );
    assert_fails_naming(&check(&env), &["rules.toml:2:20:"]);
}

#[test]
fn invalid_value_is_reported_at_the_value() {
    let env = env_with_rules(
        "[server]\n\
         hostname = \"helpdesk.example.com\"\n\
         \n\
         [tickets]\n\
         default_priority = \"Whenever\"\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:5:20:"]);
    assert!(
        all_output(&out).contains("Whenever"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn errors_in_two_files_are_both_reported() {
    let env = env_with_rules(
        "[server]\n\
         hostname = \"helpdesk.example.com\"\n\
         \n\
         [limits]\n\
         max_mesage_size = 10\n",
    );
    env.write_config(
        "mailboxes/acme.toml",
        "[client]\n\
         customer = \"Acme Corp\"\n\
         domain = = \"acme.example\"\n",
    );
    assert_fails_naming(&check(&env), &["rules.toml:5:1:", "acme.toml:3:10:"]);
}

#[test]
fn a_valid_mailboxes_file_passes_check() {
    let env = Env::new(&Options::default());
    env.write_config(
        "mailboxes/acme.toml",
        "[client]\n\
         customer = \"Acme Corp\"\n\
         domain = \"acme.example\"\n\
         \n\
         [[mailbox]]\n\
         address = \"regulatory@acme.example\"\n\
         priority = \"Urgent\"\n\
         issue_type = \"Regulatory\"\n\
         \n\
         [[mailbox]]\n\
         address = \"billing\"\n",
    );
    let out = check(&env);
    assert!(out.status.success(), "{}", all_output(&out));
}

#[test]
fn unknown_key_in_a_mailboxes_file_is_reported() {
    let env = Env::new(&Options::default());
    env.write_config(
        "mailboxes/acme.toml",
        "[client]\n\
         customer = \"Acme Corp\"\n\
         domain = \"acme.example\"\n\
         \n\
         [[mailbox]]\n\
         address = \"regulatory@acme.example\"\n\
         priorty = \"Urgent\"\n",
    );
    assert_fails_naming(&check(&env), &["acme.toml:7:1:"]);
}

#[test]
fn serve_refuses_to_start_on_a_broken_config() {
    let env = env_with_rules(
        "[server]\n\
         smtp = \"127.0.0.1:0\"\n\
         \n\
         [limits]\n\
         max_mesage_size = 10\n",
    );
    // run() has a deadline: a server that starts anyway fails the test.
    let out = env.run(&["serve"]);
    let text = all_output(&out);
    assert!(
        !out.status.success(),
        "serve started on a broken config:\n{text}"
    );
    assert!(
        text.contains("rules.toml:5:1:"),
        "serve names the error:\n{text}"
    );
}

/// A bad `[detector]` entry is reported at its own value, not at the
/// `[detector]` header: a regex that does not compile, a pattern with an
/// unknown category, and a keyword with nothing to match.
#[test]
fn bad_detector_entry_is_reported_at_its_own_value() {
    // Line 6, column 9: the opening quote of the regex.
    let env = env_with_rules(
        "[detector]\n\
         min_score = 1\n\
         \n\
         [[detector.patterns]]\n\
         name = \"broken\"\n\
         regex = \"(unclosed\"\n\
         category = \"payment\"\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:6:9:"]);
    assert!(all_output(&out).contains("broken"), "{}", all_output(&out));

    // The second pattern's category, line 9 column 12.
    let env = env_with_rules(
        "[[detector.patterns]]\n\
         name = \"fine\"\n\
         category = \"phone\"\n\
         regex = \"call\\\\d+\"\n\
         \n\
         [[detector.patterns]]\n\
         name = \"odd\"\n\
         regex = \"x+y\"\n\
         category = \"fax\"\n",
    );
    assert_fails_naming(&check(&env), &["rules.toml:9:12:"]);

    // The second entry of a keyword list written as a dotted key: line 3,
    // column 34 (the `"` of `"!!"`).
    let env = env_with_rules(
        "[detector]\n\
         min_score = 1\n\
         keywords.messaging = [\"text me\", \"!!\"]\n",
    );
    assert_fails_naming(&check(&env), &["rules.toml:3:34:"]);
}

#[test]
fn sla_calendars_and_policies_are_checked_at_their_values() {
    let env = env_with_rules(
        "[sla.calendar.office]\n\
         time_zone = \"Mars/Olympus\"\n\
         monday = [\"09:00-12:00\", \"11:00-18:00\"]\n\
         tuesday = [\"25:00-26:00\"]\n\
         holidays = [\"*-02-30\"]\n\
         [[sla.policy]]\n\
         name = \"standard\"\n\
         calendar = \"ofice\"\n\
         warn_at = 1.5\n\
         escalate = [\"page_the_ceo\"]\n\
         [sla.policy.targets]\n\
         urgent = { first_response = \"soon\" }\n\
         critical = { first_response = \"1h\" }\n",
    );
    let out = check(&env);
    assert_fails_naming(
        &out,
        &[
            "rules.toml:2:13: unknown time zone `Mars/Olympus`",
            "rules.toml:3:26: monday: `11:00-18:00` overlaps `09:00-12:00`",
            "rules.toml:4:12: tuesday: `25:00` is not a time of day",
            "rules.toml:5:13: `*-02-30` is not a yearly holiday",
            "rules.toml:8:12: unknown calendar `ofice`; defined: office",
            "rules.toml:9:11: warn_at 1.5 must be between 0 and 1",
            "rules.toml:10:13: unknown escalation `page_the_ceo`",
            "rules.toml:12:29: `soon` is not a duration",
            "rules.toml:13:12: unknown priority `critical`",
        ],
    );
}

#[test]
fn webhook_errors_are_reported_at_the_value() {
    // Line by line: 1 [[webhook]], 2 url, 3 events, 4 secret_env, 5 format.
    let env = env_with_rules(
        "[[webhook]]\n\
         url = \"ftp://hooks.example.com/x\"\n\
         events = [\"ticket.created\", \"ticket.exploded\"]\n\
         secret_env = \"POSTDESK_TEST_UNSET_WEBHOOK_SECRET\"\n\
         format = \"xml\"\n",
    );
    let out = check(&env);
    assert_fails_naming(
        &out,
        &[
            "rules.toml:2:7:",
            "rules.toml:3:29:",
            "rules.toml:4:14:",
            "rules.toml:5:10:",
        ],
    );
    let text = all_output(&out);
    for word in [
        "ftp://",
        "ticket.exploded",
        "POSTDESK_TEST_UNSET_WEBHOOK_SECRET",
        "xml",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn unknown_webhook_key_is_reported_at_its_line_and_column() {
    let env = env_with_rules(
        "[[webhook]]\n\
         url = \"https://hooks.example.com/y\"\n\
         events = [\"ticket.closed\"]\n\
         secret_fil = \"hook_secret\"\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:4:1:"]);
    assert!(all_output(&out).contains("secret_fil"));
}

#[test]
fn store_settings_are_checked_at_their_place() {
    // Lines: 1 [store], 2 backend, 3 url, 4 node.
    let env = env_with_rules(
        "[store]\n\
         backend = \"oracle\"\n\
         url = \"postgres://postdesk:hunter2@db.example.com/postdesk\"\n\
         node = \"gw 1\"\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:2:11:", "rules.toml:4:8:"]);
    let text = all_output(&out);
    assert!(text.contains("unknown store backend `oracle`"), "{text}");
    assert!(text.contains("is for backend = \"postgres\""), "{text}");
    // PostgreSQL: a password in the URL, and no URL at all.
    let env = env_with_rules(
        "[store]\n\
         backend = \"postgres\"\n\
         url = \"postgres://postdesk:hunter2@db.example.com/postdesk\"\n",
    );
    let out = check(&env);
    assert_fails_naming(&out, &["rules.toml:3:7:"]);
    assert!(
        all_output(&out).contains("use password_env or password_file"),
        "{}",
        all_output(&out)
    );
    assert!(
        !all_output(&out).contains("hunter2"),
        "the password is echoed"
    );
    let env = env_with_rules("[store]\nbackend = \"postgres\"\n");
    assert_fails_naming(&check(&env), &["rules.toml:2:11:"]);
}
