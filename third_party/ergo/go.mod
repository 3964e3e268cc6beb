module github.com/ergo-services/ergo

go 1.17
