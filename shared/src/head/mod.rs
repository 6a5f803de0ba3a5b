//! Classification heads over a backbone's feature map: Query2Label and the linear head.

pub mod attention;
pub mod attention_entropy;
pub mod attention_map;
pub mod dropout;
pub mod group_wise_linear;
pub mod linear;
pub mod position_encoding;
pub mod query2label;
pub mod token_linear;
pub mod transformer;

pub use attention_entropy::{SpreadCost, attention_spread_cost};
pub use attention_map::{AttentionSelection, attention_maps, peak_over_even_share};
pub use linear::{LinearHead, LinearHeadConfig};
pub use query2label::{Query2Label, Query2LabelConfig, Query2LabelOutput};
