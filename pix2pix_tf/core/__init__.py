"""The building blocks under the networks, the models and the trainer; nothing here knows a
network, a task or a run.

    layers        normalisation and dropout with the paper's inference modes, seeds, the
                  input check, reflection padding, blurs, the up-convolutions' bilinear start
    conditioning  the hook by which a task adds inputs beside the image (FiLM)
    subpixel      the 4x4 stride-2 up-convolution as sub-pixel convolutions (TFLite export)
    losses        the cGAN objective (vanilla or least squares), L1, feature matching, the
                  matching-aware D loss, the focal frequency loss, D's accuracy
    metrics       image measures: L1, PSNR, SSIM, Lab histograms, the lattice (grid), sharp, SWD
    schedules     the paper's linear learning-rate decay
    optimizers    Adam with one fused update for all of a network's weights
    plotting      loss curves and sample grids
"""
