pub mod load;
pub mod notify;
