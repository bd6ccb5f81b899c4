"""Avatar models: the interface every kind implements and the registry of kinds; the Gaussian kind (Gaussian
sets, neural fields that move them, initialisation, densification); storage of a trained model."""
