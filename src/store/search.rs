//! Full-text search (SQLite FTS5, table `message_search`, migrations
//! `0011_search` and `0014_search_content`: the index keeps no copy of the
//! text, it reads it from the messages through the view
//! `message_search_source`): the index is written with each message, in its
//! transaction; [`Store::search`] ranks the newest [`RECENT`] matches with
//! BM25 and cuts a snippet around them.

use super::db::params;
use serde::Serialize;

use super::{Error, Store, Tx};
use crate::domain::MessageRowId;

/// Matches ranked per query: the newest this many (after the filters).
pub const RECENT: i64 = 5_000;

/// One match of [`Store::search`].
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// The ticket's row id, if the message is on one.
    pub ticket_id: Option<i64>,
    /// The ticket's number (unformatted).
    pub ticket_number: Option<i64>,
    /// The ticket's queue (to format its number).
    pub queue: String,
    /// When the ticket was opened, Unix seconds (to format its number).
    pub ticket_opened: i64,
    /// The message's row id.
    pub message_row: i64,
    /// The message's Message-ID.
    pub message_id: String,
    /// Its subject.
    pub subject: String,
    /// Text around the match, the matched words in `[` `]`.
    pub snippet: String,
    /// BM25 rank: lower is better.
    pub rank: f64,
}

/// Filters of [`Store::search`].
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Only tickets in this queue.
    pub queue: Option<String>,
    /// Only tickets with this status.
    pub status: Option<String>,
    /// Only messages from this address.
    pub from: Option<String>,
    /// Only messages received at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// At most this many hits.
    pub limit: usize,
}

/// A person's query as an FTS5 query: every word must occur (in any
/// column), each taken literally (quoted), so `"`, `*`, `AND`, `NEAR` or
/// `-` typed by a person are words, never syntax; a word ending in `*`
/// matches as a prefix. `None` when the query has no word.
pub fn fts_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split_whitespace()
        .filter_map(|w| {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            let word = word.replace('"', "\"\"");
            (!word.trim_matches(|c: char| !c.is_alphanumeric()).is_empty())
                .then(|| format!("\"{word}\"{}", if prefix { "*" } else { "" }))
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The words of an [`fts_query`] as a PostgreSQL `tsquery` (`simple`
/// configuration): each word a quoted lexeme, a trailing `*` a prefix, all
/// of them required.
pub fn ts_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split_whitespace()
        .filter_map(|w| {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            let word: String = word
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.' || *c == '@')
                .flat_map(char::to_lowercase)
                .collect();
            (!word.is_empty()).then(|| format!("'{word}'{}", if prefix { ":*" } else { "" }))
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// One message's row of the index, waiting for [`Tx::flush_search`].
#[derive(Debug, Clone)]
pub(super) struct SearchRow {
    id: i64,
    subject: String,
    text: String,
    names: String,
}

impl Tx<'_> {
    /// Index message `id` for search: its subject, text and attachment
    /// names, unless it is postdesk's own system mail (`kind` `system`).
    ///
    /// The row is kept and written by [`Tx::flush_search`] just before the
    /// commit: FTS5 writes its pending rows out as a new segment at every
    /// statement savepoint, so rows written one message at a time made a
    /// segment (and merge work) per message; written together they make
    /// one per transaction.
    pub fn index_message<'n>(
        &self,
        id: MessageRowId,
        kind: &str,
        subject: &str,
        text: &str,
        attachment_names: impl Iterator<Item = &'n str>,
    ) -> Result<(), Error> {
        if kind == "system" {
            return Ok(());
        }
        let names: Vec<&str> = attachment_names.collect();
        self.search_rows.borrow_mut().push(SearchRow {
            id: id.0,
            subject: subject.to_owned(),
            text: text.to_owned(),
            names: names.join(" "),
        });
        Ok(())
    }

    /// Write the index rows kept by [`Tx::index_message`]; every caller that
    /// commits a `Tx` calls it first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn flush_search(&self) -> Result<(), Error> {
        let rows = std::mem::take(&mut *self.search_rows.borrow_mut());
        if rows.is_empty() {
            return Ok(());
        }
        const Q: &str = "INSERT INTO message_search (rowid, subject, body, attachments)
            VALUES (?1, ?2, ?3, ?4)";
        let mut st = self.conn.prepare_cached(Q).map_err(|e| Error::sql(Q, e))?;
        for r in &rows {
            st.execute(params![r.id, r.subject, r.text, r.names])
                .map_err(|e| Error::sql(Q, e))?;
        }
        Ok(())
    }
}

impl Store {
    /// Messages matching `query` (see [`fts_query`]), best first.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`] (a query FTS5 cannot parse is not one: every word
    /// is quoted).
    pub fn search(&self, query: &str, f: &SearchFilter) -> Result<Vec<SearchHit>, Error> {
        let q = if self.conn.is_pg() {
            ts_query(query)
        } else {
            fts_query(query)
        };
        let Some(q) = q else {
            return Ok(Vec::new());
        };
        // The newest RECENT matches that pass the filters are ranked, not
        // every match: a word in a fifth of a million messages would
        // otherwise be scored 200,000 times per query. FTS5 walks its
        // matches in rowid order and stops at the limit.
        const Q: &str = "SELECT * FROM (
                SELECT t.id, t.number, COALESCE(t.queue, ''), m.id, m.message_id, m.subject,
                    '', bm25(message_search, 5.0, 1.0, 2.0) AS score, COALESCE(t.created_at, 0)
                FROM message_search
                JOIN messages m ON m.id = message_search.rowid
                LEFT JOIN tickets t ON t.id = m.ticket_id
                WHERE message_search MATCH ?1
                  AND (?2 IS NULL OR t.queue = ?2)
                  AND (?3 IS NULL OR t.status = ?3 COLLATE NOCASE)
                  AND (?4 IS NULL OR m.from_addr = ?4 COLLATE NOCASE)
                  AND (?5 IS NULL OR m.received_at >= ?5)
                ORDER BY message_search.rowid DESC
                LIMIT ?7)
            ORDER BY score LIMIT ?6";
        // PostgreSQL: the same, with `ts_rank` over the weighted document
        // (subject A, attachment names B, body D).
        const PG: &str = "SELECT * FROM (
                SELECT t.id, t.number, COALESCE(t.queue, ''), m.id, m.message_id, m.subject,
                    '', -ts_rank(s.doc, to_tsquery('simple', ?1)) AS score,
                    COALESCE(t.created_at, 0)
                FROM message_search s
                JOIN messages m ON m.id = s.rowid
                LEFT JOIN tickets t ON t.id = m.ticket_id
                WHERE s.doc @@ to_tsquery('simple', ?1)
                  AND (?2::text IS NULL OR t.queue = ?2)
                  AND (?3::text IS NULL OR t.status = ?3 COLLATE NOCASE)
                  AND (?4::text IS NULL OR m.from_addr = ?4 COLLATE NOCASE)
                  AND (?5::bigint IS NULL OR m.received_at >= ?5)
                ORDER BY s.rowid DESC
                LIMIT ?7) recent
            ORDER BY score LIMIT ?6";
        let query = self.conn.pick(Q, PG);
        let mut st = self
            .conn
            .prepare_cached(query)
            .map_err(|e| Error::sql(query, e))?;
        let rows = st
            .query_map(
                params![
                    q,
                    f.queue,
                    f.status,
                    f.from,
                    f.since,
                    f.limit as i64,
                    RECENT
                ],
                |r| {
                    Ok(SearchHit {
                        ticket_id: r.get(0)?,
                        ticket_number: r.get(1)?,
                        queue: r.get(2)?,
                        message_row: r.get(3)?,
                        message_id: r.get(4)?,
                        subject: r.get(5)?,
                        snippet: r.get(6)?,
                        rank: r.get(7)?,
                        ticket_opened: r.get(8)?,
                    })
                },
            )
            .map_err(|e| Error::sql(query, e))?;
        let mut hits: Vec<SearchHit> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| Error::sql(query, e))?;
        // Snippets for the hits shown only: cutting one costs more than
        // ranking a match.
        const SNIP: &str = "SELECT snippet(message_search, -1, '[', ']', '…', 12)
            FROM message_search WHERE message_search MATCH ?1 AND rowid = ?2";
        const SNIP_PG: &str = "SELECT ts_headline('simple',
                subject || ' … ' || body || ' ' || attachments, to_tsquery('simple', ?1),
                'StartSel=[, StopSel=], MaxWords=12, MinWords=4, MaxFragments=1,
                 FragmentDelimiter=…')
            FROM message_search WHERE rowid = ?2";
        let snip = self.conn.pick(SNIP, SNIP_PG);
        let mut st = self
            .conn
            .prepare_cached(snip)
            .map_err(|e| Error::sql(snip, e))?;
        for h in &mut hits {
            h.snippet = st
                .query_row(params![q, h.message_row], |r| r.get(0))
                .map_err(|e| Error::sql(snip, e))?;
        }
        Ok(hits)
    }

    /// Build the search index again from the stored messages; returns how
    /// many messages it holds.
    ///
    /// # Errors
    ///
    /// [`Error::Sql`].
    pub fn rebuild_search(&mut self) -> Result<i64, Error> {
        self.write(|tx| {
            if tx.conn.is_pg() {
                const CLEAR: &str = "DELETE FROM message_search";
                const FILL: &str = "INSERT INTO message_search (rowid, subject, body, attachments)
                    SELECT m.id, m.subject, m.text,
                        COALESCE((SELECT group_concat(a.name, ' ') FROM attachments a
                                  WHERE a.message_row_id = m.id), '')
                    FROM messages m WHERE m.kind != 'system'";
                tx.conn
                    .execute(CLEAR, [])
                    .map_err(|e| Error::sql(CLEAR, e))?;
                let n = tx.conn.execute(FILL, []).map_err(|e| Error::sql(FILL, e))?;
                return Ok(n as i64);
            }
            // SQLite's index reads its text from `message_search_source`
            // (the messages themselves): a rebuild indexes that view again.
            const REBUILD: &str = "INSERT INTO message_search (message_search) VALUES ('rebuild')";
            const COUNT: &str = "SELECT COUNT(*) FROM message_search_source";
            tx.conn
                .execute(REBUILD, [])
                .map_err(|e| Error::sql(REBUILD, e))?;
            tx.conn
                .query_row(COUNT, [], |r| r.get(0))
                .map_err(|e| Error::sql(COUNT, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn a_query_is_words_never_syntax() {
        assert_eq!(
            fts_query("printer fire"),
            Some("\"printer\" \"fire\"".into())
        );
        assert_eq!(fts_query("refund*"), Some("\"refund\"*".into()));
        assert_eq!(
            fts_query("a\"b OR NEAR"),
            Some("\"a\"\"b\" \"OR\" \"NEAR\"".into())
        );
        assert_eq!(fts_query("  - * \" "), None);
    }
}
