"""The GAN kit: losses, models, data, metrics, the Flax NNX adapter, compare and plots. The core never imports it."""
