//! Threading accuracy and ingest rate on a real mailing-list archive.
//!
//! ```text
//! cargo bench --bench threading_accuracy -- ARCHIVE.mbox [MORE.mbox ...]
//! ```
//! (`contrib/threading-accuracy.sh` fetches a public archive and runs this.)
//!
//! Ground truth: the conversations that the archive's own headers define,
//! i.e. the connected components of the graph whose edges join each
//! message to every id in its `In-Reply-To` and `References` (union-find,
//! ids that are not in the archive included, so two replies to a missing
//! parent are one conversation). postdesk never sees this graph: it gets the
//! messages one by one, in archive order, through the same spool and
//! pipeline as `postdesk ingest`, and each message's ticket is what the
//! pipeline answered. Each message is delivered to `support@example.com`,
//! so routing sends every one to a support ticket and the tickets show
//! threading alone (routing's reuse of a sender's open lead would otherwise
//! glue a sender's unrelated conversations).
//!
//! A message is "in the right conversation" when its ticket is the ticket
//! holding most of its conversation, and its conversation is the one
//! holding most of its ticket: a conversation split over two tickets costs
//! the messages outside its main ticket, two conversations glued into one
//! ticket cost the messages of the smaller one. Pairwise precision (two
//! messages in one ticket are in one conversation) and recall (two messages
//! of one conversation are in one ticket) are printed as well. Messages
//! routing did not ticket (blocked, system, internal senders) are counted
//! apart and left out.
//!
//! The rate is measured on the archive copied until it holds at least
//! `BENCH_MESSAGES` messages (env, default 3000), each copy with its own
//! Message-IDs and subjects, so copies never thread into each other:
//! once sequentially (one message, one commit, one fsync: what `postdesk
//! ingest` does) and once with every message in flight (the writer
//! group-commits: what a busy SMTP listener sees), with threading on
//! (all rules), with the recent-ticket rule off, and off altogether.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk::domain::TicketId;
use postdesk::outbound::Config;
use postdesk::spool::{Envelope, Source, Spool};
use postdesk::store::{Store, TicketFilter, TicketRef, Writer};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        eprintln!(
            "usage: cargo bench --bench threading_accuracy -- ARCHIVE.mbox [...]\n\
             (contrib/threading-accuracy.sh fetches one and runs this)"
        );
        return Ok(());
    }
    let mut corpus = Vec::new();
    for f in &files {
        let before = corpus.len();
        read_mbox(f, &mut corpus)?;
        println!("{}: {} messages", f.display(), corpus.len() - before);
    }
    // Archive dumps repeat messages (the same list captured twice, byte
    // for byte or re-encoded). An archive holds each message once, so keep
    // the first message with each Message-ID.
    let mut seen = std::collections::HashSet::new();
    let before = corpus.len();
    corpus.retain(|raw| {
        let p = postdesk::parse::parse(raw);
        seen.insert(p.message_id.unwrap_or(p.content_hash))
    });
    if corpus.len() < before {
        println!(
            "{} repeated messages (same Message-ID) dropped",
            before - corpus.len()
        );
    }
    let truth = Truth::new(&corpus);
    println!(
        "\ncorpus: {} messages, {} distinct Message-IDs, {} conversations by References \
         ({} with more than one message)\n",
        corpus.len(),
        truth.distinct_ids,
        truth.conversations,
        truth.multi
    );

    let variants = [
        ("all rules", ""),
        ("recent rule off", "recent_rule = false\n"),
        ("threading off", "enabled = false\n"),
    ];
    println!(
        "{:<16} {:>8} {:>8} {:>9} {:>9} {:>9}  rules that matched",
        "threading", "tickets", "right", "share", "pair-P", "pair-R"
    );
    for (name, threading) in variants {
        let run = ingest(&corpus, threading, false)?;
        let score = truth.score(&corpus, &run.tickets);
        println!(
            "{:<16} {:>8} {:>8} {:>8.2}% {:>8.2}% {:>8.2}%  {}",
            name,
            score.tickets,
            score.right,
            100.0 * score.right as f64 / score.scored.max(1) as f64,
            100.0 * score.precision,
            100.0 * score.recall,
            run.rules
        );
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            truth.explain_errors(&corpus, &run);
        }
        if score.unticketed > 0 {
            println!(
                "{:<16} ({} messages not ticketed by routing, left out)",
                "", score.unticketed
            );
        }
    }

    let target: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let copies = target.div_ceil(corpus.len().max(1)).max(1);
    let big: Vec<Vec<u8>> = (0..copies)
        .flat_map(|k| corpus.iter().map(move |m| copy_of(m, k)))
        .collect();
    let seq: Vec<Vec<u8>> = big.iter().take(target.min(1000)).cloned().collect();
    println!(
        "\ningest rate ({} messages in flight: {} copies of the archive; sequential: first {}):",
        big.len(),
        copies,
        seq.len()
    );
    println!(
        "{:<16} {:>14} {:>14}",
        "threading", "sequential/s", "in flight/s"
    );
    // Rounds interleave the variants, so a disk or CPU that warms up or
    // slows down over the run does not favour one; the best round counts.
    const ROUNDS: usize = 3;
    let mut best = [(0.0f64, 0.0f64); 3];
    for _ in 0..ROUNDS {
        for (v, (_, threading)) in variants.iter().enumerate() {
            let s = ingest(&seq, threading, false)?;
            let p = ingest(&big, threading, true)?;
            best[v].0 = best[v].0.max(seq.len() as f64 / s.elapsed.as_secs_f64());
            best[v].1 = best[v].1.max(big.len() as f64 / p.elapsed.as_secs_f64());
        }
    }
    for (v, (name, _)) in variants.iter().enumerate() {
        println!("{:<16} {:>14.0} {:>14.0}", name, best[v].0, best[v].1);
    }
    println!("(best of {ROUNDS} rounds)");
    Ok(())
}

/// Every message of an mbox file, in file order.
fn read_mbox(path: &Path, out: &mut Vec<Vec<u8>>) -> Result<()> {
    let f = std::fs::File::open(path)?;
    for m in mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(f)) {
        out.push(m?.unwrap_contents());
    }
    Ok(())
}

/// Copy `k` of a message: every `<id>` in its header section becomes
/// `<ck.id>` and its subject gets ` (copy k)`, so copies neither dedupe
/// nor thread into each other.
fn copy_of(raw: &[u8], k: usize) -> Vec<u8> {
    if k == 0 {
        return raw.to_vec();
    }
    let text = String::from_utf8_lossy(raw);
    let (head, body) = match text.find("\n\n") {
        Some(i) => text.split_at(i),
        None => (&text[..], ""),
    };
    let mut out = String::with_capacity(raw.len() + 64);
    let mut in_ids = false;
    for line in head.split_inclusive('\n') {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if !line.starts_with([' ', '\t']) {
            in_ids = matches!(name.as_str(), "message-id" | "in-reply-to" | "references");
        }
        if in_ids {
            out.push_str(&line.replace('<', &format!("<c{k}.")));
        } else if name == "subject" && !line.starts_with([' ', '\t']) {
            out.push_str(line.trim_end());
            out.push_str(&format!(" (copy {k})\n"));
        } else {
            out.push_str(line);
        }
    }
    out.push_str(body);
    out.into_bytes()
}

/// What one ingest run produced.
struct Run {
    /// The ticket each message was put in (`None`: not ticketed).
    tickets: Vec<Option<TicketId>>,
    /// The thread rule stored with each message, by Message-ID.
    matched: HashMap<String, String>,
    /// How often each thread rule matched, e.g. `new 40, in_reply_to 12`.
    rules: String,
    elapsed: Duration,
}

/// Ingest `messages` into a fresh data directory with `[threading]` set to
/// `threading`; `in_flight` submits them all at once (group commit), else
/// one after another.
fn ingest(messages: &[Vec<u8>], threading: &str, in_flight: bool) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("rules.toml"),
        format!("[server]\ndata_dir = \"data\"\n[threading]\n{threading}"),
    )?;
    let cfg: Config = postdesk::outbound::whole::load(dir.path())?;
    let data = cfg.data_dir();
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(cfg));
    let (writer, thread) = Writer::start(&data, postdesk::pipeline::handler(rx))?;
    let spool = Spool::new(writer);
    // Delivered to the support address, as a support mailbox would be: every
    // message is then routed to a ticket by threading alone (no lead reuse,
    // which would glue a sender's unrelated conversations by routing).
    let envelope = || Envelope {
        mail_from: String::new(),
        rcpt_to: vec!["support@example.com".to_string()],
        source: Source::Ingest,
        peer: None,
        helo: String::new(),
        web: None,
    };
    // A current-thread runtime runs spawned tasks in spawn order, so the
    // writer sees the messages in archive order in both modes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let tickets = rt.block_on(async {
        let mut out = Vec::with_capacity(messages.len());
        if in_flight {
            let mut handles = Vec::with_capacity(messages.len());
            for raw in messages {
                let spool = spool.clone();
                let env = envelope();
                let raw = raw.clone();
                handles.push(tokio::spawn(async move { spool.accept(env, raw).await }));
            }
            for h in handles {
                out.push(h.await??.ticket);
            }
        } else {
            for raw in messages {
                out.push(spool.accept(envelope(), raw.clone()).await?.ticket);
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(out)
    })?;
    let elapsed = start.elapsed();
    drop(spool);
    thread.join();

    let store = Store::open(&data)?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut matched = HashMap::new();
    for t in store.list_tickets(&TicketFilter::default())? {
        if let Some(detail) = store.ticket(TicketRef::Id(t.id))? {
            for m in detail.messages {
                *counts.entry(m.thread_match.clone()).or_default() += 1;
                matched.insert(m.message_id, m.thread_match);
            }
        }
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rules = counts
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Run {
        tickets,
        matched,
        rules,
        elapsed,
    })
}

/// The conversations the archive's headers define.
struct Truth {
    /// The conversation (union-find root) of each message, by index.
    conversation: Vec<usize>,
    distinct_ids: usize,
    conversations: usize,
    multi: usize,
}

/// The scores of one run against the truth.
struct Score {
    tickets: usize,
    scored: usize,
    right: usize,
    unticketed: usize,
    precision: f64,
    recall: f64,
}

impl Truth {
    fn new(corpus: &[Vec<u8>]) -> Truth {
        let mut nodes: HashMap<String, usize> = HashMap::new();
        let mut parent: Vec<usize> = Vec::new();
        let mut node = |id: &str, parent: &mut Vec<usize>| -> usize {
            *nodes.entry(id.to_string()).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            })
        };
        let mut own = Vec::with_capacity(corpus.len());
        for (i, raw) in corpus.iter().enumerate() {
            let p = postdesk::parse::parse(raw);
            let id = p.message_id.clone().unwrap_or_else(|| format!("no-id-{i}"));
            let me = node(&id, &mut parent);
            own.push(me);
            for other in p.in_reply_to.iter().chain(&p.references) {
                let o = node(other, &mut parent);
                union(&mut parent, me, o);
            }
        }
        let distinct_ids = {
            let mut ids = own.clone();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        let conversation: Vec<usize> = own.iter().map(|&n| find(&mut parent, n)).collect();
        let mut sizes: HashMap<usize, usize> = HashMap::new();
        for c in &conversation {
            *sizes.entry(*c).or_default() += 1;
        }
        Truth {
            conversation,
            distinct_ids,
            conversations: sizes.len(),
            multi: sizes.values().filter(|&&n| n > 1).count(),
        }
    }

    /// Print every conversation spread over several tickets and every
    /// ticket holding several conversations (`BENCH_VERBOSE=1`).
    fn explain_errors(&self, corpus: &[Vec<u8>], run: &Run) {
        let mut tickets_of: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut convs_of: HashMap<TicketId, Vec<usize>> = HashMap::new();
        for (i, t) in run.tickets.iter().enumerate() {
            if let Some(t) = t {
                tickets_of.entry(self.conversation[i]).or_default().push(i);
                convs_of.entry(*t).or_default().push(i);
            }
        }
        let line = |i: usize| {
            let p = postdesk::parse::parse(&corpus[i]);
            let id = p.message_id.clone().unwrap_or_default();
            format!(
                "    ticket {:>4}  conv {:>4}  {:<17} {:<40.40} irt={:?} refs={}",
                run.tickets[i].map_or(0, |t| t.0),
                self.conversation[i],
                run.matched.get(&id).map_or("", String::as_str),
                p.subject.unwrap_or_default(),
                p.in_reply_to,
                p.references.len()
            )
        };
        for (c, members) in &tickets_of {
            let mut ts: Vec<_> = members.iter().filter_map(|&i| run.tickets[i]).collect();
            ts.sort();
            ts.dedup();
            if ts.len() > 1 {
                println!("  conversation {c} split over {} tickets:", ts.len());
                for &i in members {
                    println!("{}", line(i));
                }
            }
        }
        for (t, members) in &convs_of {
            let mut cs: Vec<_> = members.iter().map(|&i| self.conversation[i]).collect();
            cs.sort();
            cs.dedup();
            if cs.len() > 1 {
                println!("  ticket {} holds {} conversations:", t.0, cs.len());
                for &i in members {
                    println!("{}", line(i));
                }
            }
        }
    }

    fn score(&self, corpus: &[Vec<u8>], tickets: &[Option<TicketId>]) -> Score {
        // Cell counts: (conversation, ticket) -> messages.
        let mut cell: HashMap<(usize, TicketId), usize> = HashMap::new();
        let mut unticketed = 0;
        for (i, t) in tickets.iter().enumerate().take(corpus.len()) {
            match t {
                Some(t) => *cell.entry((self.conversation[i], *t)).or_default() += 1,
                None => unticketed += 1,
            }
        }
        let mut by_conv: HashMap<usize, (usize, TicketId)> = HashMap::new();
        let mut by_ticket: HashMap<TicketId, (usize, usize)> = HashMap::new();
        let mut conv_total: HashMap<usize, usize> = HashMap::new();
        let mut ticket_total: HashMap<TicketId, usize> = HashMap::new();
        for (&(c, t), &n) in &cell {
            // Ties go to the lower id: deterministic, and no better guess.
            let e = by_conv.entry(c).or_insert((0, t));
            if n > e.0 || (n == e.0 && t < e.1) {
                *e = (n, t);
            }
            let e = by_ticket.entry(t).or_insert((0, c));
            if n > e.0 || (n == e.0 && c < e.1) {
                *e = (n, c);
            }
            *conv_total.entry(c).or_default() += n;
            *ticket_total.entry(t).or_default() += n;
        }
        let right: usize = cell
            .iter()
            .filter(|&(&(c, t), _)| by_conv[&c].1 == t && by_ticket[&t].1 == c)
            .map(|(_, &n)| n)
            .sum();
        let pairs = |n: usize| (n * n.saturating_sub(1) / 2) as f64;
        let both: f64 = cell.values().map(|&n| pairs(n)).sum();
        let in_ticket: f64 = ticket_total.values().map(|&n| pairs(n)).sum();
        let in_conv: f64 = conv_total.values().map(|&n| pairs(n)).sum();
        Score {
            tickets: ticket_total.len(),
            scored: cell.values().sum(),
            right,
            unticketed,
            precision: if in_ticket > 0.0 {
                both / in_ticket
            } else {
                1.0
            },
            recall: if in_conv > 0.0 { both / in_conv } else { 1.0 },
        }
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}
