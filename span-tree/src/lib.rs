//! A trace's spans walked as a tree, for the two tools that draw one:
//! `trace-viewer` (spans received over OTLP) and `jaeger-check` (spans from
//! Jaeger's query API). The walk decides where each span goes; each tool
//! formats the lines its own way.
//!
//! Every span is placed exactly once. One that cannot hang under a root is
//! placed at depth 0 with a [`Mark`] saying why: its parent is not in the
//! trace, it names itself, an earlier span has its id, or its parents go
//! round in a circle. The walk keeps its own stack and a visited set, so no
//! chain of parents, however long or circular, can hang it or overflow the
//! thread's stack.

use std::collections::HashMap;

/// Indentation grows with depth up to here; a deeper span is drawn at this
/// indent with its depth written out ([`depth_label`]), so a long chain
/// stays readable.
pub const MAX_INDENT_DEPTH: usize = 24;

/// What the walk needs of a span; each tool makes one from its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// The span's id.
    pub span_id: &'a str,
    /// The id of the span it names as its parent; `None` for a root.
    pub parent_span_id: Option<&'a str>,
    /// When it started, in any unit that orders spans.
    pub start: u64,
}

/// Why a span is placed at depth 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A root: it names no parent.
    Root,
    /// Its parent is not in the trace.
    Orphan,
    /// It names itself as its parent.
    OwnParent,
    /// An earlier span of the trace has the same span id.
    DuplicateId,
    /// Its parents go round in a circle, never reaching a root; the circle
    /// is drawn from its earliest span.
    Cycle,
}

/// One span's place in the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Its index in the spans walked.
    pub index: usize,
    /// 0 where the walk started a subtree, one more for each level below.
    pub depth: usize,
    /// Why it is at depth 0; `None` below.
    pub mark: Option<Mark>,
}

/// `"[depth N] "` for a span deeper than [`MAX_INDENT_DEPTH`], else empty:
/// what both tools write before such a span's line.
pub fn depth_label(depth: usize) -> String {
    if depth > MAX_INDENT_DEPTH {
        format!("[depth {depth}] ")
    } else {
        String::new()
    }
}

/// `spans` as a tree: the subtrees of the spans that name no parent, an
/// absent one, themselves or a repeated id, in start order, children in
/// start order below each; then each circle of parents, from its earliest
/// span. The first span with an id is the one children hang under.
pub fn walk(spans: &[Node<'_>]) -> Vec<Placed> {
    let mut first_with_id: HashMap<&str, usize> = HashMap::with_capacity(spans.len());
    let mut marks: Vec<Option<Mark>> = vec![None; spans.len()];
    for (index, span) in spans.iter().enumerate() {
        if first_with_id.contains_key(span.span_id) {
            marks[index] = Some(Mark::DuplicateId);
        } else {
            first_with_id.insert(span.span_id, index);
        }
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (index, span) in spans.iter().enumerate() {
        if marks[index].is_some() {
            continue;
        }
        marks[index] = match span.parent_span_id {
            None => Some(Mark::Root),
            Some(parent) if parent == span.span_id => Some(Mark::OwnParent),
            Some(parent) => match first_with_id.get(parent) {
                Some(&parent) => {
                    children.entry(parent).or_default().push(index);
                    None
                }
                None => Some(Mark::Orphan),
            },
        };
    }
    let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&i| spans[i].start);
    children.values_mut().for_each(by_start);
    let mut tops: Vec<usize> = (0..spans.len()).filter(|&i| marks[i].is_some()).collect();
    by_start(&mut tops);

    let mut walk = Walk {
        children: &children,
        seen: vec![false; spans.len()],
        placed: Vec::with_capacity(spans.len()),
    };
    for top in tops {
        walk.from(top, marks[top]);
    }
    // What is left hangs off a circle of parents.
    let mut rest: Vec<usize> = (0..spans.len()).filter(|&i| !walk.seen[i]).collect();
    by_start(&mut rest);
    for index in rest {
        if !walk.seen[index] {
            walk.from(index, Some(Mark::Cycle));
        }
    }
    walk.placed
}

/// The walk's state: who is placed, and where.
struct Walk<'a> {
    children: &'a HashMap<usize, Vec<usize>>,
    seen: Vec<bool>,
    placed: Vec<Placed>,
}

impl Walk<'_> {
    /// Places `top` at depth 0 with `mark`, and everything below it not yet
    /// placed, depth-first with an explicit stack.
    fn from(&mut self, top: usize, mark: Option<Mark>) {
        let mut stack = vec![(top, 0usize)];
        while let Some((index, depth)) = stack.pop() {
            if std::mem::replace(&mut self.seen[index], true) {
                continue;
            }
            let mark = if depth == 0 { mark } else { None };
            self.placed.push(Placed { index, depth, mark });
            // Pushed in reverse, so they pop in start order.
            for &child in self.children.get(&index).into_iter().flatten().rev() {
                if !self.seen[child] {
                    stack.push((child, depth + 1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn s<'a>(span_id: &'a str, parent_span_id: Option<&'a str>, start: u64) -> Node<'a> {
        Node {
            span_id,
            parent_span_id,
            start,
        }
    }

    fn shape<'a>(spans: &[Node<'a>]) -> Vec<(&'a str, usize, Option<Mark>)> {
        walk(spans)
            .iter()
            .map(|p| (spans[p.index].span_id, p.depth, p.mark))
            .collect()
    }

    #[test]
    fn children_hang_under_their_parent_in_start_order() {
        let spans = [
            s("c2", Some("r"), 30),
            s("r", None, 10),
            s("c1", Some("r"), 20),
            s("g", Some("c1"), 25),
        ];
        assert_eq!(
            shape(&spans),
            [
                ("r", 0, Some(Mark::Root)),
                ("c1", 1, None),
                ("g", 2, None),
                ("c2", 1, None),
            ]
        );
    }

    #[test]
    fn each_kind_of_misplaced_span_is_marked_at_the_top() {
        let spans = [
            s("r", None, 1),
            s("o", Some("gone"), 2),
            s("self", Some("self"), 3),
            s("r", None, 4),
            s("a", Some("b"), 5),
            s("b", Some("a"), 6),
        ];
        assert_eq!(
            shape(&spans),
            [
                ("r", 0, Some(Mark::Root)),
                ("o", 0, Some(Mark::Orphan)),
                ("self", 0, Some(Mark::OwnParent)),
                ("r", 0, Some(Mark::DuplicateId)),
                ("a", 0, Some(Mark::Cycle)),
                ("b", 1, None),
            ]
        );
    }

    #[test]
    fn a_five_thousand_span_chain_walks_without_growing_the_stack() {
        let ids: Vec<String> = (0..5000u64).map(|i| format!("{i:016x}")).collect();
        let spans: Vec<Node> = (0..5000)
            .map(|i| s(&ids[i], i.checked_sub(1).map(|p| ids[p].as_str()), i as u64))
            .collect();
        let placed = walk(&spans);
        assert_eq!(placed.len(), 5000);
        assert_eq!(placed[4999].depth, 4999);
        assert_eq!(depth_label(MAX_INDENT_DEPTH), "");
        assert_eq!(depth_label(MAX_INDENT_DEPTH + 1), "[depth 25] ");
    }

    proptest! {
        #[test]
        fn every_span_is_placed_exactly_once(raw in prop::collection::vec((0u8..12, prop::option::of(0u8..12), 0u64..5), 0..40)) {
            let names: Vec<String> = (0..12).map(|n: u8| n.to_string()).collect();
            let spans: Vec<Node> = raw
                .iter()
                .map(|(id, parent, start)| {
                    s(&names[usize::from(*id)], parent.map(|p| names[usize::from(p)].as_str()), *start)
                })
                .collect();
            let placed = walk(&spans);
            let mut indexes: Vec<usize> = placed.iter().map(|p| p.index).collect();
            indexes.sort_unstable();
            prop_assert_eq!(indexes, (0..spans.len()).collect::<Vec<_>>());
            for p in &placed {
                prop_assert_eq!(p.mark.is_some(), p.depth == 0);
            }
        }
    }
}
