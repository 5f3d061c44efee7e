import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`); playwright-core never downloads a browser. */
export const CHROMIUM = process.env['KILN_CHROMIUM'] ?? '/usr/bin/chromium';

/** Screenshots of each test's key moments (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

/** Under CI a missing browser is a failure, not a skip: the page would otherwise ship untested. */
export const browserMissing = !existsSync(CHROMIUM);
if (browserMissing && process.env['CI'] === 'true') {
  throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set KILN_CHROMIUM`);
}

export async function launchBrowser(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}

/** A page that fails the test on any request leaving Kiln (fonts, icons, scripts must all be local). */
export async function openPage(browser: Browser, origin: string): Promise<{ page: Page; external: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const external: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith(origin.replace('http', 'ws')) || url.startsWith('data:')) return route.continue();
    external.push(url);
    return route.abort();
  });
  return { page, external };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}
