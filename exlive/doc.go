// Package exlive implements the EXLIVE platform's TCP JSON interface (port
// 1502) from the client's side: the framing of a byte stream into JSON
// objects (Reader, Writer), typed messages for every command of the
// specification (1000–1013 and the 8000 answer) with a decoder that does
// not build maps (Decoder), a session over one connection (Client: login,
// heartbeat, requests matched to their answers, inventory), and a Session
// that keeps one logged in forever, to one of the platform's addresses, with
// capped, jittered backoff, and tells when another client seems to be using
// the account.
//
// The specification (in Chinese; docs/protocol.md renders it in English
// beside what live servers are seen to do and the project's decisions) is
// short and leaves gaps; the code takes the decisions that page records:
// frames are split by brace depth and string state, never by lines alone,
// and capped in size; text is UTF-8 or GB18030; any field may be a string or
// a number; an empty string means the field was not given; "succeed" and
// "success" both accept a command; a platform that answers heartbeats and
// then falls silent is a dead link; a list of groups or vehicles ends after
// a silence that reading a backlog of positions does not count as one;
// unknown commands are handed over, not refused.
//
// Nothing here knows about MQTT: package bridge joins a Session to a broker.
package exlive
