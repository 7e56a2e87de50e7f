pub mod events;
pub mod health;
