//! Ids of stored things, each its own type, so that an event id and a job id (or any other
//! number) cannot be swapped without the compiler saying so. On the wire and in storage they are
//! plain integers.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Before the first one: where reading from the start begins.
            pub const ZERO: $name = $name(0);
            /// Past every one that can exist.
            pub const MAX: $name = $name(i64::MAX);

            /// The id stored (or sent) as this integer.
            pub const fn new(raw: i64) -> $name {
                $name(raw)
            }

            /// The integer to store or send.
            pub const fn get(self) -> i64 {
                self.0
            }

        }

        /// The id `count` places after this one.
        impl std::ops::Add<i64> for $name {
            type Output = $name;

            fn add(self, count: i64) -> $name {
                $name(self.0 + count)
            }
        }

        impl std::ops::AddAssign<i64> for $name {
            fn add_assign(&mut self, count: i64) {
                self.0 += count;
            }
        }

        /// The id `count` places before this one.
        impl std::ops::Sub<i64> for $name {
            type Output = $name;

            fn sub(self, count: i64) -> $name {
                $name(self.0 - count)
            }
        }

        /// How many places apart two ids are.
        impl std::ops::Sub for $name {
            type Output = i64;

            fn sub(self, earlier: $name) -> i64 {
                self.0 - earlier.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<$name, Self::Err> {
                text.parse().map($name)
            }
        }

        /// Documented as the integer it is on the wire.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <i64 as utoipa::PartialSchema>::schema()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// An event's id: positive, monotonic, never reused.
    EventId
);

id_type!(
    /// A job's id.
    JobId
);
