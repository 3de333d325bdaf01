import path from "node:path";
import { describePublished } from "../../../test-support/published";

describePublished(path.resolve(__dirname, ".."));
