// Placeholder until the local stack lands: starts nothing.
export default async function setup(): Promise<void> {}
