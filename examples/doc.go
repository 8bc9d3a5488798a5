// Package examples holds ready-to-use configurations of other programs for
// exlive2mqtt's topics: a Node-RED flow (node-red/flow.json) and a Telegraf
// configuration (telegraf/telegraf.conf). It has no code; its tests check
// every topic and payload field the examples use against the contract, and
// run Node-RED and Telegraf against a real bridge where they are installed
// (install-tools.sh installs them).
package examples
