// Placeholder until the first model lands.
