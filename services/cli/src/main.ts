import { hello } from '@tandem/common';
console.log(hello(process.argv.length));
