//! The location of every node of a YAML or JSON document, keyed by JSON pointer.
//!
//! `serde_yaml` gives values but no positions, so the same text is also read with
//! `saphyr-parser`'s event stream, which carries a span per event.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use crate::diag::Span;

/// Where one node is: the span of its key (for object members) and of its value.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeSpan {
    /// The member name, when the node is an object member.
    pub key: Option<Span>,
    /// The value.
    pub value: Span,
}

/// Spans of every node of a document.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    nodes: HashMap<String, NodeSpan>,
}

enum Frame {
    Map {
        pointer: String,
        key: Option<(String, Span)>,
    },
    Seq {
        pointer: String,
        index: usize,
    },
    /// A complex key (a mapping used as a key): ignored.
    Skip,
}

/// Converts saphyr's character indices to byte offsets.
struct Offsets {
    bytes: Option<Vec<usize>>,
}

impl Offsets {
    fn new(text: &str) -> Offsets {
        if text.is_ascii() {
            return Offsets { bytes: None };
        }
        let mut bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        bytes.push(text.len());
        Offsets { bytes: Some(bytes) }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index,
            Some(bytes) => bytes
                .get(char_index)
                .copied()
                .unwrap_or_else(|| bytes.last().copied().unwrap_or(0)),
        }
    }

    fn span(&self, span: saphyr_parser::Span) -> Span {
        Span::new(self.byte(span.start.index()), self.byte(span.end.index()))
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl SpanIndex {
    /// Indexes `text`. Text that the event parser cannot read gives an empty index: diagnostics
    /// then point at the start of the file, and the value itself comes from `serde_yaml`.
    pub fn build(text: &str) -> SpanIndex {
        let offsets = Offsets::new(text);
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            let span = offsets.span(span);
            match event {
                Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..) => {
                    let opens = match event {
                        Event::MappingStart(..) => Some(true),
                        Event::SequenceStart(..) => Some(false),
                        _ => None,
                    };
                    // A scalar in key position names the next member.
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        if key.is_none() {
                            match event {
                                Event::Scalar(ref name, ..) => {
                                    *key = Some((name.to_string(), span));
                                    continue;
                                }
                                _ => {
                                    if opens.is_some() {
                                        stack.push(Frame::Skip);
                                    }
                                    continue;
                                }
                            }
                        }
                    }
                    let (pointer, key_span) = match stack.last_mut() {
                        None => (String::new(), None),
                        Some(Frame::Map { pointer, key }) => {
                            let (name, key_span) = key.take().unwrap_or_default();
                            (format!("{pointer}/{}", escape(&name)), Some(key_span))
                        }
                        Some(Frame::Seq { pointer, index }) => {
                            *index += 1;
                            (format!("{pointer}/{}", *index - 1), None)
                        }
                        Some(Frame::Skip) => {
                            if opens.is_some() {
                                stack.push(Frame::Skip);
                            }
                            continue;
                        }
                    };
                    index.nodes.insert(
                        pointer.clone(),
                        NodeSpan {
                            key: key_span,
                            value: span,
                        },
                    );
                    match opens {
                        Some(true) => stack.push(Frame::Map { pointer, key: None }),
                        Some(false) => stack.push(Frame::Seq { pointer, index: 0 }),
                        None => {}
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some(Frame::Map { pointer, .. } | Frame::Seq { pointer, .. }) =
                        stack.pop()
                    {
                        if let Some(node) = index.nodes.get_mut(&pointer) {
                            let end = span.start + span.len;
                            if end > node.value.start {
                                node.value.len = end - node.value.start;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        index
    }

    /// The node at `pointer`, or the nearest ancestor that has a span.
    pub fn find(&self, pointer: &str) -> NodeSpan {
        let mut pointer = pointer;
        loop {
            if let Some(node) = self.nodes.get(pointer) {
                return *node;
            }
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return NodeSpan::default(),
            }
        }
    }

    /// The span to label for `pointer`: the key when `prefer_key` and there is one, else the value.
    pub fn span(&self, pointer: &str, prefer_key: bool) -> Span {
        let node = self.find(pointer);
        match (prefer_key, node.key) {
            (true, Some(key)) => key,
            _ => node.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_values_in_block_yaml() {
        let text =
            "title: Company\nproperties:\n  name:\n    type: string\n  tags:\n    - a\n    - é\n";
        let index = SpanIndex::build(text);
        let node = index.find("/properties/name/type");
        assert_eq!(
            &text[node.value.start..node.value.start + node.value.len],
            "string"
        );
        let key = node.key.unwrap();
        assert_eq!(&text[key.start..key.start + key.len], "type");
        let item = index.find("/properties/tags/1").value;
        assert_eq!(&text[item.start..item.start + item.len], "é");
    }

    #[test]
    fn finds_nodes_in_json() {
        let text = "{\n  \"properties\": {\"a/b\": {\"type\": \"integer\"}}\n}";
        let index = SpanIndex::build(text);
        let node = index.find("/properties/a~1b/type").value;
        assert_eq!(&text[node.start..node.start + node.len], "\"integer\"");
    }

    #[test]
    fn a_missing_pointer_falls_back_to_its_parent() {
        let text = "properties:\n  name: {type: string}\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.find("/properties/name/missing").value,
            index.find("/properties/name").value
        );
    }
}
