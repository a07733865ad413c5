export const hello = (x: number): string => 'common ' + x;
