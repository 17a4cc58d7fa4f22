//! The `<source>` argument: every source this build of ingest registers, and nothing else. A leaf.

use std::sync::LazyLock;

use clap::builder::PossibleValue;
use herald_proto::v1::Source;

/// A source name as the CLI takes it; the choices are `Source::ALL`, so they cannot drift from
/// what ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceArg(pub Source);

static ALL: LazyLock<Vec<SourceArg>> =
    LazyLock::new(|| Source::ALL.iter().copied().map(SourceArg).collect());

impl clap::ValueEnum for SourceArg {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.token()))
    }
}

impl SourceArg {
    pub fn token(self) -> &'static str {
        self.0.token()
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_registered_source_is_a_choice_and_nothing_else() {
        let handlers = herald_ingest::sources::handlers(&Default::default());
        let registered: Vec<&str> = handlers.iter().map(|h| h.source().token()).collect();
        let choices: Vec<&str> = SourceArg::value_variants()
            .iter()
            .map(|s| s.token())
            .collect();
        assert_eq!(choices.len(), registered.len());
        for source in &registered {
            assert!(choices.contains(source), "{source} is not a choice");
        }
        assert!(SourceArg::from_str("bogus", true).is_err());
        assert_eq!(
            SourceArg::from_str("github", false).map(|s| s.0),
            Ok(Source::Github)
        );
    }
}
