/** @type {import('jest').Config} */
module.exports = {
  projects: ["<rootDir>/packages/*/jest.config.js", "<rootDir>/apps/*/jest.config.js"],
};
