//! Closed sets of words (a spec's `strategy: canary`, a row's `status`, a verdict's source),
//! decoded once into enums, so nothing downstream compares strings or falls through to a default.
//!
//! Owns: the [`Keyword`] trait, the `keyword!` macro that declares such an enum with its
//! spellings, and their decoding (with a did-you-mean), serde and display. Must not touch: what
//! the values mean (each owner matches on them exhaustively).

use super::decode::{did_you_mean, Decoder, FromNode};
use super::yaml::Node;

/// An enum spelled as one of a fixed list of words.
pub trait Keyword: Sized + Copy + Eq + 'static {
    /// Every value with its spelling, in the order errors list them.
    const ALL: &'static [(&'static str, Self)];

    /// The value spelled `s`, exactly.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(w, _)| *w == s).map(|(_, v)| *v)
    }

    /// Every spelling, for messages.
    fn words() -> Vec<&'static str> {
        Self::ALL.iter().map(|(s, _)| *s).collect()
    }

    /// Why `s` is not one of the words, with a did-you-mean when one is close.
    fn unknown(s: &str) -> String {
        let words = Self::words();
        let hint = match did_you_mean(s, &words) {
            Some(w) => format!("; did you mean `{w}`?"),
            None => String::new(),
        };
        format!("`{s}` is not one of {}{hint}", words.join(", "))
    }
}

/// Decode a keyword from a node; an unknown word is reported on the field's path (and the path
/// marked as errored, so rules that depend on the value stay quiet), returning `fallback`.
pub(crate) fn decode_keyword<K: Keyword>(n: &Node, path: &str, d: &mut Decoder, fallback: K) -> K {
    let word = String::decode(n, path, d);
    if d.has_error(path) {
        return fallback;
    }
    match K::parse(&word) {
        Some(k) => k,
        None => {
            d.field(path, K::unknown(&word));
            fallback
        }
    }
}

/// Declare a keyword enum: `keyword! { /// doc  pub enum Name (default Variant) { A = "a", ... } }`.
/// The default is what an invalid spec holds in place of a bad word; a checked spec never does.
macro_rules! keyword {
    ($(#[$m:meta])* pub enum $name:ident (default $def:ident) {
        $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $crate::spec::keyword::Keyword for $name {
            const ALL: &'static [(&'static str, Self)] = &[$(($text, $name::$variant)),+];
        }

        impl $name {
            /// The spelling in specs and JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$def
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <$name as $crate::spec::keyword::Keyword>::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(
                        <$name as $crate::spec::keyword::Keyword>::unknown(&s),
                    )
                })
            }
        }

        impl $crate::spec::decode::FromNode for $name {
            fn decode(
                n: &$crate::spec::yaml::Node,
                path: &str,
                d: &mut $crate::spec::decode::Decoder,
            ) -> Self {
                $crate::spec::keyword::decode_keyword(n, path, d, $name::$def)
            }
        }
    };
}

pub(crate) use keyword;

#[cfg(test)]
mod tests {
    use super::*;

    keyword! {
        /// A test set.
        pub enum Colour (default Red) { Red = "red", DarkBlue = "dark-blue" }
    }

    #[test]
    fn words_round_trip_and_explain() {
        assert_eq!(Colour::parse("dark-blue"), Some(Colour::DarkBlue));
        assert_eq!(Colour::DarkBlue.as_str(), "dark-blue");
        assert_eq!(Colour::parse("Red"), None);
        assert_eq!(
            Colour::unknown("dark-blu"),
            "`dark-blu` is not one of red, dark-blue; did you mean `dark-blue`?"
        );
        let json = serde_json::to_string(&Colour::DarkBlue).unwrap();
        assert_eq!(json, "\"dark-blue\"");
        assert_eq!(
            serde_json::from_str::<Colour>(&json).unwrap(),
            Colour::DarkBlue
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
    }
}
