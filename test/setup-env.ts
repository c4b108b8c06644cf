// Placeholder until the local stack lands.
export {};
