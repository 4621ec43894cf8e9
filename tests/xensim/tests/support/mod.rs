pub mod vif;
