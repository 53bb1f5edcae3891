/**
 * Cron planning without a database: next fire times across DST changes (croner does the
 * arithmetic; these pin what Rhythm relies on), and which due times a pass fires for each
 * catchUp mode.
 */
import { describe, expect, it } from 'vitest';
import { RhythmValidationError } from 'rhythm';
import { dueFires, parseCron, upcoming, MAX_FIRES, ON_TIME_MS } from '../src/schedules/cron.js';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('cron planning', () => {
  it('a fixed-time job in Europe/Paris runs once on both DST change days, at the right UTC instant', () => {
    const cron = parseCron('30 2 * * *', 'Europe/Paris');
    // Spring forward (2025-03-30, 02:00 CET -> 03:00 CEST): 02:30 does not exist; it runs at 03:00 CEST.
    expect(iso(upcoming(cron, new Date('2025-03-29T00:00:00Z'), 3))).toEqual([
      '2025-03-29T01:30:00.000Z', // 02:30 CET (+1)
      '2025-03-30T01:00:00.000Z', // 03:00 CEST, just after the gap
      '2025-03-31T00:30:00.000Z', // 02:30 CEST (+2)
    ]);
    // Fall back (2025-10-26, 03:00 CEST -> 02:00 CET): 02:30 happens twice; it runs once.
    expect(iso(upcoming(cron, new Date('2025-10-25T00:00:00Z'), 3))).toEqual([
      '2025-10-25T00:30:00.000Z',
      '2025-10-26T00:30:00.000Z', // the first 02:30 (CEST)
      '2025-10-27T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('an interval job skips the missing hour and runs in both repeated hours', () => {
    const cron = parseCron('*/30 * * * *', 'Europe/Paris');
    // Spring forward: local 01:30 CET is followed by 03:00 CEST (one UTC half hour later).
    expect(iso(upcoming(cron, new Date('2025-03-30T00:30:00Z'), 3))).toEqual([
      '2025-03-30T00:30:00.000Z',
      '2025-03-30T01:00:00.000Z',
      '2025-03-30T01:30:00.000Z',
    ]);
    // Fall back: local 02:00 and 02:30 run in CEST and again in CET, every UTC half hour.
    expect(iso(upcoming(cron, new Date('2025-10-26T00:00:00Z'), 4))).toEqual([
      '2025-10-26T00:00:00.000Z',
      '2025-10-26T00:30:00.000Z',
      '2025-10-26T01:00:00.000Z',
      '2025-10-26T01:30:00.000Z',
    ]);
  });

  it('reads 6 fields as seconds first, and a time zone east of UTC in the stored UTC instant', () => {
    expect(iso(upcoming(parseCron('*/20 * * * * *', 'UTC'), new Date('2025-01-01T00:00:05Z'), 3))).toEqual([
      '2025-01-01T00:00:20.000Z',
      '2025-01-01T00:00:40.000Z',
      '2025-01-01T00:01:00.000Z',
    ]);
    expect(iso(upcoming(parseCron('0 3 * * *', 'Asia/Tokyo'), new Date('2025-06-01T00:00:00Z'), 1))).toEqual(['2025-06-01T18:00:00.000Z']);
  });

  it('refuses an invalid expression or time zone with an error naming it', () => {
    expect(() => parseCron('61 * * * *', 'UTC')).toThrow(RhythmValidationError);
    expect(() => parseCron('61 * * * *', 'UTC')).toThrow(/invalid cron expression "61 \* \* \* \*".*minute/);
    expect(() => parseCron('* * * *', 'UTC')).toThrow(/invalid cron expression "\* \* \* \*"/);
    expect(() => parseCron('* * * * * * *', 'UTC')).toThrow(/invalid cron expression/);
    expect(() => parseCron('0 0 31 2 *', 'UTC')).toThrow(/never fires/);
    expect(() => parseCron('0 3 * * *', 'Mars/Olympus')).toThrow(/unknown time zone "Mars\/Olympus"/);
    expect(() => parseCron('', 'UTC')).toThrow(/cron expression must be a non-empty string/);
  });

  describe('due times of one pass', () => {
    const hourly = parseCron('15 * * * *', 'UTC');
    const now = new Date('2025-05-05T12:45:00Z');
    // Earliest unfired time 3 h 40 min ago: 09:15, 10:15, 11:15 and 12:15 are due, all missed.
    const from = new Date('2025-05-05T09:05:00Z');

    it("catchUp 'none' drops missed times, 'last' fires the latest, 'all' fires each", () => {
      expect(dueFires(hourly, from, now, 'none').fire).toEqual([]);
      expect(iso(dueFires(hourly, from, now, 'last').fire)).toEqual(['2025-05-05T12:15:00.000Z']);
      expect(iso(dueFires(hourly, from, now, 'all').fire)).toEqual([
        '2025-05-05T09:15:00.000Z',
        '2025-05-05T10:15:00.000Z',
        '2025-05-05T11:15:00.000Z',
        '2025-05-05T12:15:00.000Z',
      ]);
      for (const mode of ['none', 'last', 'all'] as const)
        expect(dueFires(hourly, from, now, mode).next?.toISOString()).toBe('2025-05-05T13:15:00.000Z');
      expect(dueFires(hourly, from, now, 'none').skipped).toBe(4);
    });

    it('a time less than ON_TIME_MS late is on time and fires in every mode', () => {
      const late = new Date(new Date('2025-05-05T12:15:00Z').getTime() + ON_TIME_MS - 1);
      for (const mode of ['none', 'last', 'all'] as const) {
        expect(iso(dueFires(hourly, new Date('2025-05-05T12:15:00Z'), late, mode).fire)).toEqual(['2025-05-05T12:15:00.000Z']);
      }
    });

    it("'all' after a long outage of a frequent schedule fires only the latest MAX_FIRES", () => {
      const perSecond = parseCron('* * * * * *', 'UTC');
      const d = dueFires(perSecond, new Date('2025-05-05T00:00:00Z'), now, 'all');
      expect(d.fire).toHaveLength(MAX_FIRES);
      expect(d.fire.at(-1)!.toISOString()).toBe('2025-05-05T12:45:00.000Z');
      expect(d.fire[0]!.getTime()).toBe(now.getTime() - (MAX_FIRES - 1) * 1000);
      expect(d.skipped).toBeGreaterThan(0);
    });
  });
});
