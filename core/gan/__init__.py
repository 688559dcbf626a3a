"""The GAN lab of Lesson 12: training loops for DCGAN, WGAN and CycleGAN, run as jobs."""
