//! The views, one component per file.

pub mod capture_view;
pub mod command_builder;
pub mod examples_menu;
pub mod field_detail;
pub mod fuel_chart;
pub mod hex_view;
pub mod input;
pub mod live_view;
pub mod map;
pub mod records_table;
pub mod reports_panel;
pub mod share_bar;
