pub mod accounts;
pub mod destinations;
pub mod devices;
pub mod events;
pub mod export;
pub mod health;
pub mod jobs;
pub mod tokens;
