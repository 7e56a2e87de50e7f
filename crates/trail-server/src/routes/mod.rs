pub mod accounts;
pub mod events;
pub mod health;
pub mod tokens;
