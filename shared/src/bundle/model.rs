//! A bundle's network: one backbone, several heads. A photo's feature map is computed once and
//! read by every head.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::backbone::Backbone;
use crate::model::{Classifier, ClassifierOutput, Head};

/// The backbone and the heads, in the order of their
/// [`HeadDescription`](super::HeadDescription)s.
#[derive(Module, Debug)]
pub struct Bundle {
    pub backbone: Backbone,
    pub heads: Vec<Head>,
}

impl Bundle {
    /// Every head's output for normalised `images` `[batch, 3, height, width]`, in head order;
    /// the backbone runs once.
    pub fn forward(&self, images: Tensor<4>) -> Vec<ClassifierOutput> {
        let all: Vec<usize> = (0..self.heads.len()).collect();
        self.forward_heads(images, &all)
    }

    /// The outputs of the heads at positions `heads`, in that order, for normalised `images`;
    /// the backbone runs once, and the other heads not at all.
    ///
    /// # Panics
    /// If a position is not a head's.
    pub fn forward_heads(&self, images: Tensor<4>, heads: &[usize]) -> Vec<ClassifierOutput> {
        let features = self.backbone.forward_features(images);
        heads
            .iter()
            .map(|&head| self.heads[head].forward(features.clone()))
            .collect()
    }

    /// The same bundle for inference, with the backbone's batch norms folded into its
    /// convolutions ([`Backbone::fold_batch_norms`]); never for a bundle that is saved after.
    pub fn fold_batch_norms(self) -> Self {
        Self {
            backbone: self.backbone.fold_batch_norms(),
            heads: self.heads,
        }
    }

    /// Head `index` on the backbone as one model (sharing the parameters, not copying them).
    pub fn classifier(&self, index: usize) -> Classifier {
        Classifier {
            backbone: self.backbone.clone(),
            head: self.heads[index].clone(),
        }
    }
}
