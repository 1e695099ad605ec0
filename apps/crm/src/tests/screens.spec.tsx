// The screens of crm in a simulated DOM (happy-dom) against a fake API: for every entity, the
// table asks for a page and sorts through the query, and the form labels every field and sends
// nothing its validators refuse (the checks are resources/frontend's `testScreens`, shared by
// every app). Run by `vitest run`. Written once by `prefiq codegen`; yours to change: add your own
// tests beside it.
import { testScreens } from "@prefiq/frontend/testing";
import { ENTITIES } from "../components/generated.js";
import { configure } from "../services/client.js";

testScreens(ENTITIES, configure);
