//! The notices popup's state (`!`): the pages of operational notices read so
//! far, newest first, the selection, and whether only the unacknowledged ones
//! are listed. Pure: pages come in through [`NoticeList::take_page`], and what
//! to read next is a [`NoticeQuery`] the app hands to the worker.

use crate::model::{
    Notice, NoticeId, NoticePage, NoticeQuery, DEFAULT_NOTICE_PAGE, MAX_NOTICE_PAGE,
};

/// How many notices a page read asks for.
pub const NOTICE_PAGE: usize = DEFAULT_NOTICE_PAGE;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoticeList {
    /// The notices read, newest first (every page read so far).
    pub notices: Vec<Notice>,
    /// The cursor of the next older page; `None` once the oldest is loaded.
    pub next_before: Option<NoticeId>,
    pub unacked_only: bool,
    /// Index into `notices`.
    pub index: usize,
    /// The first page has arrived.
    pub loaded: bool,
    /// A read is under way (paging past the end waits for it).
    pub reading: bool,
    /// `A` was pressed: acknowledging every notice waits for y.
    pub confirm_all: bool,
    /// A notice changed since the list was read: read it again.
    pub stale: bool,
}

impl NoticeList {
    pub fn new(unacked_only: bool) -> NoticeList {
        NoticeList {
            unacked_only,
            reading: true,
            ..NoticeList::default()
        }
    }

    /// The read of the first page (on opening, on `u`).
    pub fn first_page(&self) -> NoticeQuery {
        NoticeQuery {
            before: None,
            limit: NOTICE_PAGE,
            unacked_only: self.unacked_only,
        }
    }

    /// The read that refreshes what is loaded: from the top, as many as are
    /// loaded (so the pages paged into stay), up to the longest page.
    pub fn reread(&self) -> NoticeQuery {
        NoticeQuery {
            before: None,
            limit: self.notices.len().clamp(NOTICE_PAGE, MAX_NOTICE_PAGE),
            unacked_only: self.unacked_only,
        }
    }

    /// The read of the next older page, if there is one and none is under way.
    pub fn next_page(&self) -> Option<NoticeQuery> {
        if self.reading {
            return None;
        }
        Some(NoticeQuery {
            before: Some(self.next_before?),
            limit: NOTICE_PAGE,
            unacked_only: self.unacked_only,
        })
    }

    pub fn selected(&self) -> Option<&Notice> {
        self.notices.get(self.index)
    }

    /// Takes a page read for `query`. A first page replaces the list (the
    /// selected notice stays selected by its id while it is listed); an older
    /// page is appended when it continues the list. A page read for the other
    /// `unacked_only` (answered after `u`) is not taken. True when taken.
    pub fn take_page(&mut self, query: NoticeQuery, page: NoticePage) -> bool {
        if query.unacked_only != self.unacked_only {
            return false;
        }
        match query.before {
            None => {
                let selected = self.selected().map(|n| n.id);
                self.notices = page.notices;
                self.index = match selected {
                    // Newest first: ids descend.
                    Some(id) => self
                        .notices
                        .iter()
                        .position(|n| n.id == id)
                        .unwrap_or_else(|| self.notices.partition_point(|n| n.id > id)),
                    None => 0,
                };
            }
            Some(before) if Some(before) == self.next_before => {
                self.notices.extend(page.notices);
            }
            Some(_) => return false,
        }
        self.next_before = page.next_before;
        self.index = self.index.min(self.notices.len().saturating_sub(1));
        self.loaded = true;
        self.reading = false;
        true
    }

    /// Puts an acknowledged notice in place of its unacknowledged row.
    pub fn replace(&mut self, notice: Notice) {
        if let Some(row) = self.notices.iter_mut().find(|n| n.id == notice.id) {
            *row = notice;
        }
    }

    /// How many of the loaded notices are not acknowledged.
    pub fn unacked_loaded(&self) -> usize {
        self.notices.iter().filter(|n| !n.is_acked()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NoticeCause, NoticeKind};
    use chrono::DateTime;

    fn notice(n: u64) -> Notice {
        Notice {
            id: ulid::Ulid::from_parts(1_700_000_000_000 + n, 0),
            at: DateTime::from_timestamp(1_700_000_000 + n as i64, 0).unwrap(),
            kind: NoticeKind::DestinationEnabled,
            destination: Some("orders".into()),
            event: None,
            cause: NoticeCause::Operator,
            acked_at: None,
        }
    }

    fn page(ns: &[u64], next: Option<u64>) -> NoticePage {
        NoticePage {
            notices: ns.iter().map(|&n| notice(n)).collect(),
            next_before: next.map(|n| notice(n).id),
            unacked: 0,
        }
    }

    #[test]
    fn pages_append_by_cursor_and_a_reread_keeps_the_selection() {
        let mut list = NoticeList::new(false);
        assert!(list.next_page().is_none(), "the first read is under way");
        assert!(list.take_page(list.first_page(), page(&[9, 8, 7], Some(7))));
        let older = list.next_page().expect("a next page");
        assert_eq!(older.before, Some(notice(7).id));
        list.reading = true;
        // An answer for a cursor the list is not at is not taken.
        let mut wrong = older;
        wrong.before = Some(notice(8).id);
        assert!(!list.take_page(wrong, page(&[1], None)));
        assert!(list.take_page(older, page(&[6, 5], None)));
        assert_eq!(list.notices.len(), 5);
        assert!(list.next_page().is_none(), "the oldest is loaded");
        list.index = 3; // notice 6
        assert_eq!(list.reread().limit, NOTICE_PAGE);
        // A newer notice arrived; 6 was dropped: the next older one is selected.
        assert!(list.take_page(list.reread(), page(&[10, 9, 8, 7, 5], None)));
        assert_eq!(list.selected().unwrap().id, notice(5).id);
        // A page for the other filter (answered after `u`) is not taken.
        list.unacked_only = true;
        assert!(!list.take_page(
            NoticeQuery {
                unacked_only: false,
                ..list.first_page()
            },
            page(&[1], None)
        ));
    }
}
