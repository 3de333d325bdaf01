const fs = require("node:fs");
const path = require("node:path");

// Every workspace package with its own jest.config.js is a jest project.
const projects = ["packages", "apps"].flatMap((dir) =>
  fs.existsSync(path.join(__dirname, dir))
    ? fs
        .readdirSync(path.join(__dirname, dir))
        .map((name) => path.join(__dirname, dir, name, "jest.config.js"))
        .filter((file) => fs.existsSync(file))
    : [],
);

/** @type {import('jest').Config} */
module.exports = {
  projects,
  reporters: ["default", "<rootDir>/scripts/jest-summary-reporter.js"],
  // A global option: the projects' own `testTimeout` applies only when a project runs alone
  // (cd packages/x && jest); in this run of them all, jest's 5 s default would apply instead.
  testTimeout: 30_000,
};
