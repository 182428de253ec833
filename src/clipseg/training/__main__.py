from ..cli.train import main_train

if __name__ == "__main__":
    main_train()
