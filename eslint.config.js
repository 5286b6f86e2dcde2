// One linter for the whole tree. `no-console` keeps printing in the CLI, scripts, bench and examples only.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".pgshift/", "dist/", "coverage/", "bench/results/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "no-console": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      "no-constant-condition": ["error", { checkLoops: false }],
      // pgshift looks for NUL and other control characters on purpose (values PostgreSQL cannot store).
      "no-control-regex": "off",
    },
  },
  {
    files: ["src/cli/**", "scripts/**", "bench/**", "examples/**", "bin/**"],
    rules: { "no-console": "off" },
  },
);
