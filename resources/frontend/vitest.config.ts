// The components' unit tests (tests/*.spec.tsx), in a simulated DOM: `vitest run` here.
import { defineConfig } from "vitest/config";

export default defineConfig({ test: { environment: "happy-dom", include: ["tests/**/*.spec.tsx"] } });
