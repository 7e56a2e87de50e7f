pub mod bench;
pub mod emit;
pub mod read;
pub mod serve;
pub mod tokens;
pub mod transfer;
pub mod users;
pub mod verify;
