//! Ticket numbers in a queue's own format, over real SMTP: a sales ticket
//! shows `S-<year>-0042` in its acknowledgement's subject tag, and a reply
//! carrying that tag threads into it; the same number with another year
//! does not.

mod common;

use common::sink::{Sink, outbound_rules};
use common::{Mail, TestServer, str_field, text_mail};

const ALICE: &str = "alice@customer.test";

fn alice_to_sales(subject: &str, id: &str) -> Mail {
    alice_to("sales@example.com", subject, id)
}

fn alice_to(to: &str, subject: &str, id: &str) -> Mail {
    Mail::new(
        ALICE,
        &[to],
        text_mail(
            &format!("Alice Example <{ALICE}>"),
            to,
            subject,
            id,
            &[],
            "Hello,\nhow much for 40 licences?\n",
        ),
    )
}

#[test]
fn a_sales_ticket_is_tagged_in_its_queues_format_and_a_reply_with_the_tag_threads() {
    let sink = Sink::start();
    let rules = outbound_rules(
        "example.com",
        sink.port,
        "[tickets]\nnumber_start = 42\n\
         [tickets.number_format_by_queue]\nsales = \"S-{year}-{n:04}\"\n",
    )
    .replace(
        "poll_secs = 0.2\n",
        "poll_secs = 0.2\nacknowledge = [\"support\", \"sales\"]\n",
    );
    let server = TestServer::start_with_rules(&rules);

    server.deliver(&[alice_to_sales("Licence quote", "q1@customer.test")]);
    let tickets = server.wait_tickets(1);
    let year = &str_field(&tickets[0], "created_at")[..4];
    let number = format!("S-{year}-0042");
    assert_eq!(str_field(&tickets[0], "number"), number);
    assert_eq!(str_field(&tickets[0], "queue"), "sales");
    let ack = sink.wait_to(ALICE, 1).remove(0);
    assert!(
        ack.subject().contains(&format!("[{number}]")),
        "{}",
        ack.subject()
    );
    assert!(ack.parsed.text.contains(&number), "{}", ack.parsed.text);

    // A reply that keeps only the tag (no In-Reply-To) threads by it.
    server.deliver(&[alice_to_sales(
        &format!("Re: Licence quote [{number}]"),
        "q2@customer.test",
    )]);
    let shown = server.show_json(&number);
    let messages = shown["messages"].as_array().expect("messages");
    let reply = messages
        .iter()
        .find(|m| str_field(m, "message_id") == "q2@customer.test")
        .expect("the reply is on the ticket");
    assert_eq!(str_field(reply, "thread_match"), "subject_tag");

    // The same number with another year is not this ticket's tag (sent
    // to support@, where no open lead joins it): a new support ticket,
    // numbered from the one sequence and shown in support's format.
    server.deliver(&[alice_to(
        "support@example.com",
        "Something else [S-1999-0042]",
        "q3@customer.test",
    )]);
    let tickets = server.wait_tickets(2);
    let numbers: Vec<&str> = tickets.iter().map(|t| str_field(t, "number")).collect();
    assert!(numbers.contains(&"#43"), "{numbers:?}");
}
