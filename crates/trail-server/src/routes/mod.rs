pub mod accounts;
pub mod events;
pub mod export;
pub mod health;
pub mod tokens;
