// The lint every app's frontend (apps/*/src, cortex/src) and these components pass: ESLint's and
// typescript-eslint's recommended rules, and the rules of hooks. Run by generator/tests/contracts.rs:
//   node_modules/.bin/eslint --config resources/frontend/eslint.config.js --max-warnings 0 <paths>
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default [
  { ignores: ["**/dist/**", "**/.tmp*/**", "**/node_modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "warn",
      // `const { [name]: _, ...rest } = row` drops a member on purpose.
      "@typescript-eslint/no-unused-vars": ["error", { varsIgnorePattern: "^_", argsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", fetch: "readonly", document: "readonly", localStorage: "readonly", sessionStorage: "readonly" } },
  },
];
