// Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or $CHROMIUM) driven by
// playwright-core, with a fresh profile that is removed on close.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/**
 * Launch Chromium with `extraArgs` and playwright `options`; resolves to the browser context,
 * whose `dispose()` closes it and removes its profile.
 */
export async function launch(options = {}, extraArgs = []) {
  const userDataDir = mkdtempSync(join(tmpdir(), "fleetview-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width: 1400, height: 1000 },
    ...options,
  });
  context.dispose = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return context;
}
