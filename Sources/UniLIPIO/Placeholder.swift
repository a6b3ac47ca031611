// Placeholder until this layer gains its first file.
