//! Deserializing with a validation step that keeps the YAML position.
//!
//! `#[serde(try_from = ...)]` validates after the node has been read, so serde_yaml_ng blames
//! the enclosing mapping: a bad `warn` band would point at the SLO's first line. These helpers
//! run the check inside the visitor of the node itself, so the error carries that node's line
//! and column. Use them through [`deserialize_validated!`](crate::deserialize_validated).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Reads a mapping as `Raw`, then converts it.
pub fn map<'de, D, Raw, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
    T: TryFrom<Raw>,
    T::Error: fmt::Display,
{
    struct MapVisitor<Raw, T>(PhantomData<(Raw, T)>);
    impl<'de, Raw, T> Visitor<'de> for MapVisitor<Raw, T>
    where
        Raw: Deserialize<'de>,
        T: TryFrom<Raw>,
        T::Error: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(A::Error::custom)
        }
    }
    deserializer.deserialize_map(MapVisitor(PhantomData))
}

/// Reads a string, then converts it.
pub fn string<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String>,
    T::Error: fmt::Display,
{
    struct StringVisitor<T>(PhantomData<T>);
    impl<T> Visitor<'_> for StringVisitor<T>
    where
        T: TryFrom<String>,
        T::Error: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<T, E> {
            T::try_from(v.to_string()).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(StringVisitor(PhantomData))
}

/// Reads a number, then converts it.
pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<f64>,
    T::Error: fmt::Display,
{
    struct NumberVisitor<T>(PhantomData<T>);
    impl<T> Visitor<'_> for NumberVisitor<T>
    where
        T: TryFrom<f64>,
        T::Error: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            T::try_from(v).map_err(E::custom)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            self.visit_f64(v as f64)
        }
    }
    deserializer.deserialize_f64(NumberVisitor(PhantomData))
}

/// `impl Deserialize` for a type validated by one of the helpers above:
/// `config::deserialize_validated!(Objective, map RawObjective)` (`T: TryFrom<Raw>`),
/// `(Selector, string)` (`T: TryFrom<String>`), `(Quantile, number)` (`T: TryFrom<f64>`), each
/// with an error that displays as the message (a typed error, or a `String`).
#[macro_export]
macro_rules! deserialize_validated {
    ($ty:ty, map $raw:ty) => {
        impl<'de> $crate::__serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::validated::map::<D, $raw, $ty>(d)
            }
        }
    };
    ($ty:ty, string) => {
        impl<'de> $crate::__serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::validated::string::<D, $ty>(d)
            }
        }
    };
    ($ty:ty, number) => {
        impl<'de> $crate::__serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::validated::number::<D, $ty>(d)
            }
        }
    };
}
