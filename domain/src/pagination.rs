//! Server-side paging: a page request is bounded so no listing ever loads everything.

use serde::{Deserialize, Serialize};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// An offset page of a listing that stays small (projects, members, tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u32,
}

impl PageRequest {
    /// Clamps what a client asked for into the allowed range.
    pub fn new(offset: Option<u64>, limit: Option<u32>) -> Self {
        Self {
            offset: offset.unwrap_or(0),
            limit: limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// One page of items and the total count of the whole listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub offset: u64,
    pub limit: u32,
}

impl<T> Page<T> {
    pub fn has_next(&self) -> bool {
        self.offset + (self.items.len() as u64) < self.total
    }

    pub fn has_previous(&self) -> bool {
        self.offset > 0
    }

    pub fn next_offset(&self) -> u64 {
        self.offset + u64::from(self.limit)
    }

    pub fn previous_offset(&self) -> u64 {
        self.offset.saturating_sub(u64::from(self.limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_clamped() {
        assert_eq!(PageRequest::new(None, Some(1_000_000)).limit, MAX_PAGE_SIZE);
        assert_eq!(PageRequest::new(None, Some(0)).limit, 1);
        assert_eq!(PageRequest::default().limit, DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn page_navigation() {
        let page = Page {
            items: vec![1, 2],
            total: 5,
            offset: 2,
            limit: 2,
        };
        assert!(page.has_next() && page.has_previous());
        assert_eq!((page.next_offset(), page.previous_offset()), (4, 0));
    }
}
