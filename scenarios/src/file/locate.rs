//! Line and column of a field path (`steps[2].headers.Authorization`) in YAML text.
//!
//! Rules that need the whole file (an undefined template variable, a missing feeder file) are
//! checked after parsing, when serde no longer knows positions. The YAML is walked once more
//! down to the node the path names, and an error raised *inside* that node's visitor carries
//! serde_yaml_ng's position for it — the same trick the `config` crate uses for values.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path as serde_path_to_error prints it.
pub fn display(path: &[Seg]) -> String {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// The 1-based line and column of the node at `path`, if the text has one there.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    match (Walk { rest: path }).deserialize(deserializer) {
        Err(error) if error.to_string().contains(HERE) => {
            error.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

const HERE: &str = "shakedown-locate-here";

struct Walk<'a> {
    rest: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(target), rest)) = self.rest.split_first() else {
            return self.leaf();
        };
        let mut index = 0;
        loop {
            if index == *target {
                return seq.next_element_seed(Walk { rest }).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(target), rest)) = self.rest.split_first() else {
            return self.leaf();
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == *target {
                return map.next_value_seed(Walk { rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl Walk<'_> {
    fn leaf<E: de::Error>(self) -> Result<(), E> {
        if self.rest.is_empty() {
            Err(E::custom(HERE))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_nodes() {
        let text = "name: x\nsteps:\n  - name: a\n    url: /a\n  - name: b\n    headers:\n      Authorization: \"Bearer {{ t }}\"\n";
        let path = [
            Seg::Key("steps".into()),
            Seg::Index(1),
            Seg::Key("headers".into()),
            Seg::Key("Authorization".into()),
        ];
        assert_eq!(locate(text, &path), Some((7, 22)));
        assert_eq!(display(&path), "steps[1].headers.Authorization");
        assert_eq!(locate(text, &[Seg::Key("nope".into())]), None);
    }
}
