module github.com/evsesec/evsesec

go 1.26
