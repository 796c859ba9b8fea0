//! A map from domain id to per-domain state, stored flat (indexed by id), for state that hot
//! hypercall paths look up on every request (a grant copy names up to three domains).
//!
//! Domain ids are small and dense (0, then 1, 2, ... as domains are created), so a vector
//! indexed by id is both the smallest and the fastest map: a lookup is a bounds check and a
//! load, where a `BTreeMap` walks and compares keys. Only the hypervisor inserts (when it
//! creates a domain), so a guest cannot make it grow.

use alloc::vec::Vec;
use hypercall_abi::mm::DomId;

/// Values of type `T` by [`DomId`], iterated in id order.
#[derive(Debug)]
pub struct DomIdMap<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for DomIdMap<T> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

impl<T> DomIdMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `id`.
    #[inline]
    pub fn get(&self, id: &DomId) -> Option<&T> {
        self.slots.get(usize::from(*id))?.as_ref()
    }

    /// The value of `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: &DomId) -> Option<&mut T> {
        self.slots.get_mut(usize::from(*id))?.as_mut()
    }

    /// Whether `id` has a value.
    pub fn contains_key(&self, id: &DomId) -> bool {
        self.get(id).is_some()
    }

    /// Sets the value of `id`, returning the one it replaces.
    pub fn insert(&mut self, id: DomId, value: T) -> Option<T> {
        let i = usize::from(id);
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i].replace(value)
    }

    /// Removes the value of `id`.
    pub fn remove(&mut self, id: &DomId) -> Option<T> {
        self.slots.get_mut(usize::from(*id))?.take()
    }

    /// Every value, in id order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Every `(id, value)`, in id order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (DomId, &mut T)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, v)| Some((i as DomId, v.as_mut()?)))
    }

    /// Keeps only the values for which `keep(id, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(DomId, &mut T) -> bool) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_mut().is_some_and(|v| !keep(i as DomId, v)) {
                *slot = None;
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }
}

impl<T> core::ops::Index<&DomId> for DomIdMap<T> {
    type Output = T;
    fn index(&self, id: &DomId) -> &T {
        self.get(id).expect("no value for this domain id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_in_id_order() {
        let mut m = DomIdMap::new();
        assert_eq!(m.insert(3, "c"), None);
        assert_eq!(m.insert(0, "a"), None);
        assert_eq!(m.insert(3, "C"), Some("c"));
        assert_eq!((m.get(&0), m.get(&1), m.get(&3), m.get(&DomId::MAX)), (Some(&"a"), None, Some(&"C"), None));
        assert!(m.contains_key(&0) && !m.contains_key(&2));
        assert_eq!(m.values().copied().collect::<Vec<_>>(), ["a", "C"]);
        *m.get_mut(&0).unwrap() = "A";
        assert_eq!(m.iter_mut().map(|(id, v)| (id, *v)).collect::<Vec<_>>(), [(0, "A"), (3, "C")]);
        assert_eq!(m.remove(&0), Some("A"));
        assert_eq!(m.remove(&0), None);
        assert_eq!(m.remove(&9), None);
        assert_eq!(m[&3], "C");
    }

    #[test]
    fn retain_drops_and_shrinks() {
        let mut m = DomIdMap::new();
        for id in 0..5u16 {
            m.insert(id, id * 10);
        }
        m.retain(|id, v| {
            *v += 1;
            id % 2 == 0 && id < 4
        });
        assert_eq!(m.iter_mut().map(|(id, v)| (id, *v)).collect::<Vec<_>>(), [(0, 1), (2, 21)]);
        assert_eq!(m.slots.len(), 3, "trailing empty slots are dropped");
    }
}
