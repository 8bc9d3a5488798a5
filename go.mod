module github.com/exlive2mqtt/exlive2mqtt

go 1.26.8
