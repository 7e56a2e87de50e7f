pub mod accounts;
pub mod destinations;
pub mod events;
pub mod export;
pub mod health;
pub mod tokens;
