//! A small ordered map: a vector sorted by key, searched by bisection. The capture analyzer's
//! maps (open conversations, devices seen, segments waiting behind a hole) hold at most a few
//! hundred entries at a time, where this is as fast as a B-tree and much smaller in the
//! playground's wasm (one B-tree instantiation per map costs several KB).

use alloc::vec::Vec;
use core::borrow::Borrow;

/// See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Table<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> Table<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Insert or replace; returns the value now stored and the one replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> (&mut V, Option<V>) {
        match self.find(&key) {
            Ok(i) => {
                let old = core::mem::replace(&mut self.entries[i].1, value);
                (&mut self.entries[i].1, Some(old))
            }
            Err(i) => {
                self.entries.insert(i, (key, value));
                (&mut self.entries[i].1, None)
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// The entry with the smallest key.
    pub(crate) fn first(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// Remove the entry with the smallest key.
    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        (!self.entries.is_empty()).then(|| self.entries.remove(0))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Every entry, in key order, leaving the table empty.
    pub(crate) fn take_all(&mut self) -> Vec<(K, V)> {
        core::mem::take(&mut self.entries)
    }
}
